"""``--optimizer all``: every optimizer from the same seed, initial weights and split."""

from __future__ import annotations

from landscape.errors import LandscapeError
from landscape.optim import list_optimizers, resolve_hyper
from landscape.optim.base import DEFAULT_BASE
from landscape.train.config import TrainConfig
from landscape.train.loop import TrainResult, train
from landscape.train.prepare import prepare_data


def train_all(cfg: TrainConfig, optimizers: list[str] | None = None, progress: bool = True, resume: bool = False,
              overwrite: bool = False) -> list[TrainResult]:
    """Train ``cfg`` once per optimizer (default: every registered one, :func:`landscape.optim.list_optimizers`).

    The data are prepared once and shared; every run seeds its model from
    ``cfg.seed``, so all start from identical weights (recorded as ``epoch_000.pt``).
    Hyper-parameters in ``cfg.opt_args`` are passed only to optimizers they apply to.
    """
    prepared = prepare_data(cfg.validate())
    results = []
    for name in optimizers or list_optimizers():
        args = {k: v for k, v in cfg.opt_args.items() if _applies(name, k, v, cfg.base)}
        results.append(train(cfg.replace(optimizer=name, opt_args=args), progress, resume, overwrite, prepared))
    return results


def parse_optimizers(spec: str) -> list[str]:
    """``"all"`` or a comma list -> optimizer names; LandscapeError for unknown names."""
    known = list_optimizers()
    names = known if spec == "all" else [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise LandscapeError("no optimizer given")
    for name in names:
        if name not in known:
            raise LandscapeError(f"unknown optimizer {name!r}: use one of {', '.join(known)} or 'all'")
    return names


def check_hyper(names: list[str], hyper: dict, base: str = DEFAULT_BASE) -> None:
    """Reject hyper-parameters that do not apply: to the one optimizer, or to none of several."""
    if len(names) == 1:
        resolve_hyper(names[0], hyper, base=base)
        return
    for key, value in hyper.items():
        if not any(_applies(n, key, value, base) for n in names):
            raise LandscapeError(f"{key} applies to none of the optimizers {', '.join(names)}")


def _applies(name: str, key: str, value, base: str) -> bool:
    """Whether hyper-parameter ``key`` is one that optimizer ``name`` (on ``base``) takes."""
    try:
        resolve_hyper(name, {key: value}, base=base)
        return True
    except LandscapeError:
        return False
