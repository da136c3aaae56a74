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

from landscape import logs
from landscape.analysis.cache import as_checkpoint, cached
from landscape.checkpoint import Checkpoint
from landscape.data import load_images, normalise
from landscape.data.metadata import read_metadata
from landscape.data.subset import keep_classes, parse_classes
from landscape.errors import LandscapeError
from landscape.external.scoring import binary_metrics, restricted_probs, shared_classes
from landscape.io import stable_hash
from landscape.progress import progress_bar


def check_options(data, csv=None, file_col=None, label_col=None, group_col=None, env_col=None, **_) -> None:
    """LandscapeError for a missing external folder or CSV, or CSV columns without a CSV (before any work)."""
    if not Path(data).is_dir():
        raise LandscapeError(f"external data folder not found: {data}")
    if csv is not None and not Path(csv).is_file():
        raise LandscapeError(f"metadata CSV not found: {csv}")
    if csv is not None and not file_col:
        raise LandscapeError("csv needs file_col (the column naming each image)", params=("csv", "file_col"))
    if csv is None and any((label_col, group_col, env_col)):
        raise LandscapeError("label_col, group_col and env_col need csv",
                             params=("label_col", "group_col", "env_col", "csv"))


def analyze(ck: Checkpoint | str | Path, data: str | Path, csv: str | Path | None = None,
                      file_col: str | None = None, label_col: str | None = None, group_col: str | None = None,
                      env_col: str | None = None, positive: str = "malignant", classes=None, n_boot: int = 1000,
                      seed: int = 0,
                      device: str | None = None, data_root: str | Path | None = None,
                      progress: bool = True) -> dict:
    """Evaluate a checkpoint on the external folder ``data``; returns its cached ``metrics`` record plus ``"path"``.

    ``csv`` with ``file_col`` (and optional label/group/environment columns)
    is metadata beside the images (:func:`landscape.data.metadata.read_metadata`).
    ``classes`` (e.g. ``"benign,malignant"``) scores only those external classes.
    ``result["external"]`` = ``{"source", "content_hash", "classes", "positive",
    "overall": metrics, "environments": {env: metrics}, "internal": metrics,
    "drop": {"auroc", "balanced_accuracy"}, "scores": [...]}``.
    """
    check_options(data, csv, file_col, label_col, group_col, env_col)
    classes = parse_classes(classes)
    ck = as_checkpoint(ck, device, data_root)
    meta = ck.meta["data"]
    images = keep_classes(load_images(data, img_size=meta["img_size"]), classes)
    model_idx = shared_classes(ck.classes, images.classes)
    meta_csv = read_metadata(images, csv, file_col, label_col, group_col, env_col) if csv is not None else None
    pos = next((i for i, c in enumerate(images.classes) if c.lower() == positive.lower()), None)
    if len(images.classes) == 2 and pos is None:
        raise LandscapeError(f"positive class {positive!r} is not a class of {data} ({', '.join(images.classes)})")
    content = stable_hash(sorted(zip(images.files, images.file_hashes)), length=16)
    settings = {"external": images.name, "content_hash": content, **({"classes": classes} if classes else {}),
                "metadata": meta_csv.settings() if meta_csv else None, "positive": positive, "n_boot": int(n_boot),
                "seed": int(seed)}

    def compute(full: dict) -> tuple[dict, dict]:
        with logs.run_context(ck.run_dir.name), progress_bar(f"evaluate on {images.name}", 3, progress) as bar:
            result = _compute(ck, images, model_idx, pos if len(images.classes) == 2 else None, meta_csv,
                              n_boot, seed, bar)
        result["external"].update(source=images.name, root=images.root, content_hash=content)
        return result, {"external_root": images.root}

    return cached(ck, "metrics", settings, compute)


def _compute(ck, images, model_idx, pos, meta_csv, n_boot, seed, bar) -> dict:
    from landscape.train.evaluate import predict

    start = time.perf_counter()
    data = ck.meta["data"]
    logits = predict(ck.model, normalise(images.pixels, data)).numpy()
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
        "classes": images.classes, "model_classes": ck.classes,
        "positive": None if pos is None else images.classes[pos],
        "overall": overall, "environments": envs, "internal": internal, "drop": drop,
        "group_column": (meta_csv.columns.get("group") if meta_csv else None),
        "env_column": (meta_csv.columns.get("env") if meta_csv else None),
        "scores": [{"file": f, "label": images.classes[y], "score": float(s),
                    "group": None if groups is None else groups[i],
                    "env": meta_csv.envs[i] if meta_csv and meta_csv.envs else None}
                   for i, (f, y, s) in enumerate(zip(images.files, labels, score))],
        "seconds": time.perf_counter() - start}}
