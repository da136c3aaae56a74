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
    """AUROC of ``scores`` for the boolean ``positive`` under each row of image counts ``weights [B, n]`` -> ``[B]``.

    P(score of a positive > score of a negative) + P(tie) / 2 over the weighted images: row ``b`` equals
    ``roc_auc_score`` over a resample holding image ``i`` ``weights[b, i]`` times. NaN where a row lacks a class.
    """
    order = np.argsort(scores, kind="stable")
    s, pos = np.asarray(scores)[order], np.asarray(positive)[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # first image of each distinct score
    w = np.asarray(weights)[:, order].astype(np.float64)
    wp = np.add.reduceat(w * pos, starts, axis=1)  # [B, distinct scores]
    wn = np.add.reduceat(w * ~pos, starts, axis=1)
    below = np.cumsum(wn, axis=1) - wn  # negative weight strictly below each score
    num, den = (wp * (below + 0.5 * wn)).sum(1), wp.sum(1) * wn.sum(1)
    return np.divide(num, den, out=np.full_like(num, np.nan), where=den > 0)


def balanced_accuracy_rows(labels: np.ndarray, pred: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Balanced accuracy under each row of image counts ``weights [B, n]`` -> ``[B]``: the mean, over the classes
    drawn at least once, of the weighted recall (``balanced_accuracy_score`` of the resample).
    """
    labels, pred = np.asarray(labels), np.asarray(pred)
    onehot = np.eye(int(max(labels.max(), pred.max())) + 1)[labels]  # [n, K]
    w = np.asarray(weights, dtype=np.float64)
    total = w @ onehot
    hits = w @ (onehot * (pred == labels)[:, None])
    present = total > 0
    recall = np.divide(hits, total, out=np.zeros_like(total), where=present)
    return recall.sum(1) / present.sum(1)


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
