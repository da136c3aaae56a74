"""Shared by the benchmark scripts: where BUSI lives and a cached trained checkpoint."""

from __future__ import annotations

import tempfile
from pathlib import Path

#: The BUSI copy beside the project (``../shared/data/busi``).
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "busi"


def trained_checkpoint(ckpt: str | None, data: str | None, epochs: int, img_size: int, tag: str) -> Path:
    """``ckpt`` if given, else a cnn-small trained on ``data`` for ``epochs`` (reused from the temp folder)."""
    if ckpt:
        return Path(ckpt)
    from landscape.train import TrainConfig, train

    out = Path(tempfile.gettempdir()) / f"landscape-bench-{tag}"
    cfg = TrainConfig(data=data, model="cnn-small", epochs=epochs, img_size=img_size, seed=0, keep="last",
                      out=str(out), run_name=f"busi-cnn-small-{img_size}px-e{epochs}")
    final = Path(cfg.out) / cfg.run_name / "final.pt"
    return final if final.is_file() else Path(train(cfg, progress=False).final)
