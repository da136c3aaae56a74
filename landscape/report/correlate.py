"""Per-run rows for the measure-vs-generalization analysis, and ``correlate`` (what `landscape correlate` runs)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from landscape.analysis.measures import measure_values
from landscape.checkpoint.cache import newest_for
from landscape.errors import LandscapeError
from landscape.measures import REGISTRY
from landscape.report.collect import Run, collect
from landscape.report.granulated import predictors
from landscape.report.robust import IN_SITE
from landscape.report.rows import group_name


def external_record(run: Run, source: str | None = None) -> dict | None:
    """The newest external-evaluation ``metrics`` record of this checkpoint (of ``source`` when given)."""
    def test(r):
        ext = r["result"].get("external")
        return ext is not None and (source is None or ext.get("source") == source)

    return newest_for(run.path, run.sha, "metrics", test)


def axes_of(run: Run) -> dict:
    """The hyper-parameter axes of a run (see :mod:`landscape.report.granulated`)."""
    opt = run.meta["optimizer"]
    train = run.meta.get("train") or {}
    return {"optimizer": group_name(run, several_models=False), "seed": run.seed,
            "model": f"{run.model} {sorted((run.meta['model'].get('kwargs') or {}).items())}",
            "rho": (opt.get("hyper") or {}).get("rho"), "lr": opt.get("lr"), "epochs": train.get("epochs")}


def predictor_row(run: Run, source: str | None = None) -> dict:
    """``{"name", "group", "axes", "measures", "targets", "environments", "environment_sizes"}`` of one run.

    ``environments`` maps the in-site test split and each external domain to
    its AUROC, ``environment_sizes`` to its number of images.
    """
    test, train = run.metrics("test"), run.metrics("train")
    ba, tba = test.get("balanced_accuracy"), train.get("balanced_accuracy")
    rec = external_record(run, source)
    ext = rec["result"]["external"] if rec else None
    envs, sizes = {}, {}
    if ext:
        envs[IN_SITE], sizes[IN_SITE] = ext["internal"]["auroc"], ext["internal"].get("n")
        for e, m in ext["environments"].items():
            envs[f"{ext['source']}: {e}"], sizes[f"{ext['source']}: {e}"] = m["auroc"], m.get("n", 0)
    return {
        "name": run.name, "group": group_name(run, several_models=False), "axes": axes_of(run),
        "measures": measure_values(run.path, run.sha),
        "targets": {"test_balanced_accuracy": ba, "gap": None if ba is None or tba is None else tba - ba,
                    "external_auroc": ext["overall"]["auroc"] if ext else None,
                    "drop": ext["drop"]["auroc"] if ext else None},
        "external_source": ext["source"] if ext else None,
        "environments": envs, "environment_sizes": sizes,
    }


def predictor_rows(runs: Sequence[Run], source: str | None = None) -> list[dict]:
    """The :func:`predictor_row` of every run, in order."""
    return [predictor_row(r, source) for r in runs]


def correlate_runs(runs: Sequence[Run], n_boot: int = 2000, seed: int = 0, source: str | None = None,
                   min_domain_size: int | None = None) -> dict:
    """:func:`~landscape.report.granulated.predictors` over the measures that some run has, plus the rows."""
    rows = predictor_rows(runs, source)
    present = [m for m in REGISTRY if any(r["measures"].get(m) is not None for r in rows)]
    out = predictors(rows, present, n_boot=n_boot, seed=seed, min_domain_size=min_domain_size)
    out["rows"] = rows
    out["units"] = {m: REGISTRY[m].units for m in present}
    return out


def correlate(inputs: Sequence[str | Path], n_boot: int = 2000, seed: int = 0, source: str | None = None,
              min_domain_size: int | None = None, progress: bool = True) -> dict:
    """Which measure predicts generalization over the runs ``inputs`` (nothing is computed: records only).

    ``min_domain_size``: external domains with fewer images are left out of
    the robust views (default :data:`landscape.report.robust.MIN_DOMAIN_SIZE`, 50).
    """
    if min_domain_size is not None and (isinstance(min_domain_size, bool) or not isinstance(min_domain_size, int)
                                        or min_domain_size < 1):
        raise LandscapeError(f"min_domain_size must be a positive integer, got {min_domain_size!r}")
    runs, _ = collect(inputs, compute=False, seed=seed, progress=progress)
    return correlate_runs(runs, n_boot=n_boot, seed=seed, source=source, min_domain_size=min_domain_size)
