"""Output-based measures from the logits of the training images (model in eval mode)."""

from __future__ import annotations

import numpy as np
import torch


def margins(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-image output margin ``f_y(x) - max_{c != y} f_c(x)`` (logit units), float64 [N]."""
    z = logits.double()
    true = z.gather(1, labels.view(-1, 1)).squeeze(1)
    other = z.scatter(1, labels.view(-1, 1), float("-inf")).max(dim=1).values
    return true - other


def margin_gamma(logits: torch.Tensor, labels: torch.Tensor) -> dict:
    """The margin ``gamma`` of Jiang's margin-normalised measures, as Dziugaite et al.'s reference code takes it.

    ``gamma = |k-th smallest margin|`` with ``k = max(n // 10, 1)`` over the
    ``n`` images (``torch.kthvalue``: an order statistic, where ``margin_p10``
    interpolates between two). The absolute value is the code's: a negative
    ``k``-th margin (more than a tenth of the images misclassified) gives a
    positive ``gamma``, and ``negative`` says so. Returns ``{"gamma", "k", "n",
    "negative"}`` (logit units).
    """
    m = margins(logits, labels)
    k = max(len(m) // 10, 1)
    value = float(m.kthvalue(k).values)
    return {"gamma": abs(value), "k": k, "n": len(m), "negative": value < 0}


def output_measures(logits: torch.Tensor, labels: torch.Tensor, percentile: float = 10.0) -> dict:
    """Margin percentile, mean prediction entropy (nats) and mean cross-entropy (nats).

    ``margin_p10``: the ``percentile``-th percentile of :func:`margins`
    (numpy linear interpolation), Jiang's robust replacement for the minimum
    margin. ``entropy``: mean of ``-sum_c p_c log p_c``. ``cross_entropy``:
    mean of ``-log p_y``.
    """
    logp = torch.log_softmax(logits.double(), dim=1)
    entropy = -(logp.exp() * logp).sum(1).mean()
    ce = -logp.gather(1, labels.view(-1, 1)).mean()
    return {"margin_p10": float(np.percentile(margins(logits, labels).cpu().numpy(), percentile)),
            "entropy": float(entropy), "cross_entropy": float(ce)}


def steps_to_loss(history: list[dict], steps_per_epoch: int, threshold: float = 0.1) -> int | None:
    """Optimizer steps until the epoch-mean training loss first drops to ``threshold``; None if never.

    Resolution is one epoch: the count is ``epoch * steps_per_epoch`` of the
    first epoch whose recorded ``train_loss`` (mean over the epoch's
    augmented mini-batches) is ``<= threshold``.
    """
    for h in history:
        if h.get("train_loss") is not None and h["train_loss"] <= threshold:
            return int(h["epoch"]) * int(steps_per_epoch)
    return None
