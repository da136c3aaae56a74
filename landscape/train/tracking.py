"""Experiment tracking: TensorBoard scalars per epoch and the final metrics (``train --tensorboard``).

Tags (global step = epoch; the final metrics at the last epoch):
``train/loss`` (mean training loss of the epoch, nats), ``train/lr``,
``train/grad_norm`` (mean L2 norm of the gradient each step applied),
``train/eval_loss`` (cross-entropy of the training split in eval mode, with
``stop_train_loss``), ``train/gradient_evaluations`` (cumulative),
``optimizer/<hyper>`` for the scalar hyper-parameters of the SAM family
(``rho``, ``eta``, ...), ``val/<metric>`` for every numeric validation
metric, and ``final/<split>/<metric>`` (train, val, test) of the final weights.
The values are those written to ``history.json`` and ``final.pt``.

TensorBoard is an optional dependency: ``pip install -e '.[tracking]'``.
"""

from __future__ import annotations

import math
from pathlib import Path

from landscape.errors import LandscapeError

#: Hyper-parameters logged under ``optimizer/`` when the optimizer has them.
HYPER_TAGS = ("rho", "eta", "alpha", "gamma", "beta")


def check_tensorboard() -> None:
    """Raise :class:`LandscapeError` (before any work) when the ``tensorboard`` package is missing."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise LandscapeError("tensorboard is not installed; --tensorboard needs it: pip install -e '.[tracking]' "
                             "(or pip install tensorboard)") from None


def log_dir(run_dir: Path, root: str | Path | None) -> Path:
    """Where a run's events go: ``<run_dir>/tensorboard``, or ``<root>/<run name>`` (one TensorBoard run each)."""
    return Path(run_dir) / "tensorboard" if root is None else Path(root) / Path(run_dir).name


class TensorBoard:
    """Writes one run's scalars; ``epoch(record, hyper)`` per history record, ``final(metrics, epoch)``, ``close()``."""

    def __init__(self, directory: Path):
        check_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.directory = Path(directory)
        self.writer = SummaryWriter(log_dir=str(self.directory))

    def _scalars(self, prefix: str, values: dict, step: int) -> None:
        for key, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                self.writer.add_scalar(f"{prefix}/{key}", value, step)

    def epoch(self, record: dict, hyper: dict) -> None:
        """One ``history.json`` record (``epoch``, ``train_loss``, ``lr``, ``grad_norm``, ``val``, ...)."""
        step = int(record["epoch"])
        self._scalars("train", {"loss": record["train_loss"], "lr": record["lr"],
                                "grad_norm": record.get("grad_norm"), "eval_loss": record.get("train_eval_loss"),
                                "gradient_evaluations": record.get("gradient_evaluations")}, step)
        self._scalars("optimizer", {k: hyper[k] for k in HYPER_TAGS if k in hyper}, step)
        self._scalars("val", {k: v for k, v in record.get("val", {}).items() if k != "n"}, step)
        self.writer.flush()

    def final(self, metrics: dict, epoch: int) -> None:
        """The final weights' metrics of every split, at step ``epoch``."""
        for split, values in metrics.items():
            self._scalars(f"final/{split}", {k: v for k, v in values.items() if k != "n"}, epoch)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
