"""Score a trained classifier on an external image folder (another site), on the classes both share.

Class matching is by name (case-insensitive). Every class of the external
folder must be one the model knows; the model's other classes (e.g. BUSI's
``normal``) are dropped by renormalising the probabilities over the shared
classes. With two shared classes the *score* is ``p(positive) / (p(positive)
+ p(other))`` (for BUSI -> BUS-BRA: the malignancy score
``p(m) / (p(b) + p(m))``); AUROC uses the score, balanced accuracy the
argmax over the shared classes. Images are preprocessed as in training: the
checkpoint's image size and normalisation (mean, std of its training split).

CIs are percentile bootstraps over groups (patients) when a group column is
given, else over images. The same metrics are computed on the run's own test
split restricted to the shared classes (``internal``), so the in-site to
cross-site ``drop`` compares like with like.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from landscape.checkpoint import Checkpoint, cached, load_checkpoint, record_path, store
from landscape.data import load_images, to_float
from landscape.data.metadata import read_metadata
from landscape.errors import LandscapeError
from landscape.external.bootstrap import group_bootstrap_ci
from landscape.io import stable_hash
from landscape.metrics import softmax
from landscape.progress import progress_bar


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
    out = {"n": int(len(labels)), "n_groups": len(set(map(str, groups))), "auroc": auroc(all_idx),
           "balanced_accuracy": bacc(all_idx), "counts": np.bincount(labels, minlength=probs.shape[1]).tolist()}
    out["auroc_ci"], _ = group_bootstrap_ci(auroc, groups, n_boot, seed=seed) if out["auroc"] is not None else (None, 0)
    out["balanced_accuracy_ci"], _ = group_bootstrap_ci(bacc, groups, n_boot, seed=seed)
    return out


def evaluate_external(ck: Checkpoint | str | Path, data: str | Path, csv: str | Path | None = None,
                      file_col: str | None = None, label_col: str | None = None, group_col: str | None = None,
                      env_col: str | None = None, positive: str = "malignant", n_boot: int = 1000, seed: int = 0,
                      device: str | None = None, data_root: str | Path | None = None,
                      progress: bool = True) -> dict:
    """Evaluate a checkpoint on the external folder ``data``; returns its cached ``metrics`` record plus ``"path"``.

    ``csv`` with ``file_col`` (and optional label/group/environment columns)
    is metadata beside the images (:func:`landscape.data.metadata.read_metadata`).
    ``result["external"]`` = ``{"source", "content_hash", "classes", "positive",
    "overall": metrics, "environments": {env: metrics}, "internal": metrics,
    "drop": {"auroc", "balanced_accuracy"}, "scores": [...]}``.
    """
    if csv is not None and not file_col:
        raise LandscapeError("--csv needs --csv-file-col (the column naming each image)")
    if csv is None and any((label_col, group_col, env_col)):
        raise LandscapeError("--csv-label-col/--csv-group-col/--csv-env-col need --csv")
    if not isinstance(ck, Checkpoint):
        ck = load_checkpoint(ck, device=device, data_root=data_root)
    meta = ck.meta["data"]
    images = load_images(data, img_size=meta["img_size"])
    model_idx = shared_classes(ck.classes, images.classes)
    meta_csv = read_metadata(images, csv, file_col, label_col, group_col, env_col) if csv is not None else None
    pos = next((i for i, c in enumerate(images.classes) if c.lower() == positive.lower()), None)
    if len(images.classes) == 2 and pos is None:
        raise LandscapeError(f"positive class {positive!r} is not a class of {data} ({', '.join(images.classes)})")
    content = stable_hash(sorted(zip(images.files, images.file_hashes)), length=16)
    settings = {"checkpoint": ck.path.name, "checkpoint_sha256": ck.fingerprint[:16], "external": images.name,
                "content_hash": content, "metadata": meta_csv.settings() if meta_csv else None,
                "positive": positive, "n_boot": int(n_boot), "seed": int(seed)}
    hit = cached(ck.run_dir, "metrics", settings)
    if hit is None:
        with progress_bar(f"evaluate on {images.name}", 3, progress) as bar:
            result = _compute(ck, images, model_idx, pos if len(images.classes) == 2 else None, meta_csv,
                              n_boot, seed, bar)
        result["external"].update(source=images.name, root=images.root, content_hash=content)
        store(ck.run_dir, "metrics", settings, result, {**ck.provenance(), "external_root": images.root})
        hit = cached(ck.run_dir, "metrics", settings)
    return {**hit, "path": str(record_path(ck.run_dir, "metrics", settings))}


def _compute(ck, images, model_idx, pos, meta_csv, n_boot, seed, bar) -> dict:
    from landscape.train.evaluate import predict

    start = time.perf_counter()
    data = ck.meta["data"]
    logits = predict(ck.model, to_float(images.pixels, data["mean"], data["std"])).numpy()
    probs = restricted_probs(logits, model_idx)
    labels = np.asarray(images.labels)
    bar.advance()
    groups = meta_csv.groups if meta_csv and meta_csv.groups else None
    overall = binary_metrics(probs, labels, pos, groups, n_boot, seed)
    envs = {}
    if meta_csv and meta_csv.envs:
        env_arr = np.asarray(meta_csv.envs)
        for env in sorted(set(meta_csv.envs)):
            idx = np.flatnonzero(env_arr == env)
            envs[env] = binary_metrics(probs[idx], labels[idx], pos, None if groups is None else
                                       [groups[i] for i in idx], n_boot, seed)
    bar.advance()
    # the run's own test split, restricted to the shared classes
    x_test, y_test = ck.tensors("test")
    keep = np.isin(y_test.numpy(), model_idx)
    test_labels = np.array([model_idx.index(v) for v in y_test.numpy()[keep]], dtype=np.int64)
    internal = binary_metrics(restricted_probs(predict(ck.model, x_test[keep]).numpy(), model_idx), test_labels,
                              pos, None, n_boot, seed)
    bar.advance()
    drop = {k: None if internal[k] is None or overall[k] is None else internal[k] - overall[k]
            for k in ("auroc", "balanced_accuracy")}
    score = probs[:, pos] if pos is not None else probs.max(axis=1)
    return {"external": {
        "classes": images.classes, "model_classes": ck.classes, "positive": None if pos is None else images.classes[pos],
        "overall": overall, "environments": envs, "internal": internal, "drop": drop,
        "group_column": (meta_csv.columns.get("group") if meta_csv else None),
        "env_column": (meta_csv.columns.get("env") if meta_csv else None),
        "scores": [{"file": f, "label": images.classes[y], "score": float(s),
                    "group": None if groups is None else groups[i],
                    "env": meta_csv.envs[i] if meta_csv and meta_csv.envs else None}
                   for i, (f, y, s) in enumerate(zip(images.files, labels, score))],
        "seconds": time.perf_counter() - start}}
