"""Classification metrics from logits, via scikit-learn where it has them.

All functions take ``logits`` ``[N, C]`` (float) and integer ``labels`` ``[N]``
as numpy arrays or tensors. Probabilities are ``softmax(logits)``.
"""

from __future__ import annotations

import numpy as np
import torch


def _np(a) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64."""
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """ECE with ``n_bins`` equal-width confidence bins: sum_b |B|/N * |acc(B) - conf(B)|."""
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(ece)


def _auroc(labels: np.ndarray, probs: np.ndarray, classes: list[str]) -> tuple[float | None, float | None]:
    from sklearn.metrics import roc_auc_score
    """(macro one-vs-rest AUROC, malignant-vs-rest AUROC); None where undefined (a class absent)."""
    present = np.unique(labels)
    macro = None
    if len(present) == probs.shape[1] and probs.shape[1] > 2:
        macro = float(roc_auc_score(labels, probs, multi_class="ovr", average="macro",
                                    labels=list(range(probs.shape[1]))))
    elif probs.shape[1] == 2 and len(present) == 2:
        macro = float(roc_auc_score(labels, probs[:, 1]))
    malignant = None
    if "malignant" in classes:
        k = classes.index("malignant")
        target = (labels == k).astype(int)
        if 0 < target.sum() < len(target):
            malignant = float(roc_auc_score(target, probs[:, k]))
    return macro, malignant


def classification_metrics(logits, labels, classes: list[str], n_bins: int = 15) -> dict:
    """Accuracy, balanced accuracy, macro-F1, per-class recall, AUROC (macro OvR and
    malignant-vs-rest), ECE (``n_bins`` bins) and NLL (nats, mean) for one split.
    """
    # imported here: scikit-learn takes ~1.8 s to import, and only commands that score a model need it
    from sklearn.metrics import balanced_accuracy_score, f1_score, log_loss, recall_score

    logits, labels = _np(logits).astype(np.float64), _np(labels).astype(np.int64)
    if len(labels) == 0:
        return {"n": 0}
    probs = softmax(logits)
    pred = probs.argmax(axis=1)
    idx = list(range(len(classes)))
    recall = recall_score(labels, pred, labels=idx, average=None, zero_division=0)
    macro, malignant = _auroc(labels, probs, classes)
    return {
        "n": int(len(labels)),
        "accuracy": float((pred == labels).mean()),
        "balanced_accuracy": float(balanced_accuracy_score(labels, pred)),
        "macro_f1": float(f1_score(labels, pred, labels=idx, average="macro", zero_division=0)),
        "per_class_recall": {c: float(r) for c, r in zip(classes, recall)},
        "auroc_macro": macro,
        "auroc_malignant": malignant,
        "ece": expected_calibration_error(probs, labels, n_bins),
        "nll": float(log_loss(labels, np.clip(probs, 1e-15, 1.0), labels=idx)),
    }
