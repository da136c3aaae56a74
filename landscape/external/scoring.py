"""Scoring a classifier on the classes it shares with an external set: class matching, renormalised
probabilities, AUROC and balanced accuracy with group-bootstrap CIs (pure math over arrays).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from landscape.errors import LandscapeError
from landscape.external.bootstrap import group_weights, percentile_ci
from landscape.metrics import softmax


def shared_classes(model_classes: list[str], external: list[str]) -> list[int]:
    """Model class index of each external class (by name); a class the model does not know is a LandscapeError."""
    lower = [c.lower() for c in model_classes]
    unknown = [c for c in external if c.lower() not in lower]
    if unknown:
        raise LandscapeError(f"external class(es) {', '.join(unknown)} not known to the model "
                             f"(its classes: {', '.join(model_classes)})")
    return [lower.index(c.lower()) for c in external]


def restricted_probs(logits: np.ndarray, model_idx: list[int]) -> np.ndarray:
    """Softmax probabilities of the shared classes, renormalised to sum to 1: ``[N, len(model_idx)]``."""
    p = softmax(np.asarray(logits, dtype=np.float64))[:, model_idx]
    return p / p.sum(axis=1, keepdims=True)


def auroc_rows(scores: np.ndarray, positive: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUROC of ``scores`` for the boolean ``positive`` under each row of image ``weights`` ``[B, n]`` -> ``[B]``.

    The Mann-Whitney form with ties counted 1/2: with weight ``w`` an image
    counts ``w`` times, so row ``b`` equals ``roc_auc_score`` over a resample
    holding image ``i`` ``weights[b, i]`` times. NaN where a row has no positive or no negative weight.
    """
    _, level = np.unique(scores, return_inverse=True)  # tied scores share a level
    n_levels = int(level.max()) + 1 if len(level) else 0
    w = np.asarray(weights, dtype=np.float64)
    pos = np.zeros((len(w), n_levels))
    neg = np.zeros((len(w), n_levels))
    for target, mask in ((pos, positive), (neg, ~positive)):
        np.add.at(target.T, level[mask], w[:, mask].T)
    below = np.cumsum(neg, axis=1) - neg  # negative weight strictly below each level
    with np.errstate(invalid="ignore", divide="ignore"):
        return (pos * (below + 0.5 * neg)).sum(axis=1) / (pos.sum(axis=1) * neg.sum(axis=1))


def balanced_accuracy_rows(labels: np.ndarray, pred: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Balanced accuracy (mean recall over the classes present) under each row of ``weights`` -> ``[B]``."""
    w = np.asarray(weights, dtype=np.float64)
    recalls = []
    for c in np.unique(labels):
        is_c = labels == c
        total = w[:, is_c].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            recalls.append(np.where(total > 0, w[:, is_c & (pred == c)].sum(axis=1) / total, np.nan))
    return np.nanmean(np.stack(recalls), axis=0) if recalls else np.full(len(w), np.nan)


def binary_metrics(probs: np.ndarray, labels: np.ndarray, positive: int | None, groups=None,
                   n_boot: int = 1000, seed: int = 0) -> dict:
    """AUROC (score = ``probs[:, positive]``) and balanced accuracy, each with a group-bootstrap CI.

    The resamples are drawn once (:func:`~landscape.external.bootstrap.group_weights`) and both statistics are
    computed for all of them at once, equal to scoring each resample's images with scikit-learn.
    """
    labels = np.asarray(labels)
    pred = probs.argmax(axis=1)
    groups = list(range(len(labels))) if groups is None else list(groups)
    defined = positive is not None and len(np.unique(labels)) > 1
    auroc = float(roc_auc_score(labels == positive, probs[:, positive])) if defined else None
    out = {"n": len(labels), "n_groups": len(set(map(str, groups))), "auroc": auroc,
           "balanced_accuracy": float(balanced_accuracy_score(labels, pred)),
           "counts": np.bincount(labels, minlength=probs.shape[1]).tolist()}
    weights = group_weights(groups, n_boot, seed)
    out["auroc_ci"] = percentile_ci(auroc_rows(probs[:, positive], labels == positive, weights), n_boot)[0] \
        if defined else None
    out["balanced_accuracy_ci"], _ = percentile_ci(balanced_accuracy_rows(labels, pred, weights), n_boot)
    return out
