"""Scoring a classifier on the classes it shares with an external set: class matching, renormalised
probabilities, AUROC and balanced accuracy with group-bootstrap CIs (pure math over arrays).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from landscape.errors import LandscapeError
from landscape.external.bootstrap import group_bootstrap_ci
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


def binary_metrics(probs: np.ndarray, labels: np.ndarray, positive: int | None, groups=None,
                   n_boot: int = 1000, seed: int = 0) -> dict:
    """AUROC (score = ``probs[:, positive]``) and balanced accuracy, each with a group-bootstrap CI."""
    labels = np.asarray(labels)
    pred = probs.argmax(axis=1)
    groups = list(range(len(labels))) if groups is None else list(groups)

    def auroc(idx):
        if positive is None or len(np.unique(labels[idx])) < 2:
            return None
        return float(roc_auc_score(labels[idx] == positive, probs[idx, positive]))

    def bacc(idx):
        return float(balanced_accuracy_score(labels[idx], pred[idx]))

    all_idx = np.arange(len(labels))
    out = {"n": len(labels), "n_groups": len(set(map(str, groups))), "auroc": auroc(all_idx),
           "balanced_accuracy": bacc(all_idx), "counts": np.bincount(labels, minlength=probs.shape[1]).tolist()}
    out["auroc_ci"], _ = group_bootstrap_ci(auroc, groups, n_boot, seed=seed) if out["auroc"] is not None else (None, 0)
    out["balanced_accuracy_ci"], _ = group_bootstrap_ci(bacc, groups, n_boot, seed=seed)
    return out
