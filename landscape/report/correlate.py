"""Per-run rows for the measure-vs-generalization analysis, and ``correlate`` (what `landscape correlate` runs)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from landscape.analysis.measures import measure_values, not_invariant
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
    """``{"name", "group", "axes", "measures", "targets", "n_test", "environments", "environment_sizes"}`` of one run.

    ``n_test``: images in the test split (the gap's evaluation-set size);
    ``environments`` maps the in-site test split and each external domain to
    its AUROC, ``environment_sizes`` to its number of images. ``measures``: every
    registered measure, the report's flatness columns read from the records
    ``collect`` found for its runs table (so both show one value);
    ``not_invariant``: ``{measure: reason}`` of its weight-based measures whose
    BatchNorm fold left a normalisation (:func:`landscape.analysis.measures.not_invariant`).
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
        "measures": _measures(run),
        "targets": {"test_balanced_accuracy": ba, "gap": None if ba is None or tba is None else tba - ba,
                    "external_auroc": ext["overall"]["auroc"] if ext else None,
                    "drop": ext["drop"]["auroc"] if ext else None},
        "n_test": test.get("n"),
        "not_invariant": not_invariant(run.path, run.sha),
        "external_source": ext["source"] if ext else None,
        "environments": envs, "environment_sizes": sizes,
    }


def _measures(run: Run) -> dict[str, float | None]:
    """``{measure: value}`` of every registered measure (see :func:`predictor_row`)."""
    found = {name: REGISTRY[name].read(record)[0] for name, record in run.measured.items()}
    rest = measure_values(run.path, run.sha, [s for s in REGISTRY.values() if s.name not in found])
    return {name: found[name] if name in found else rest[name] for name in REGISTRY}


def predictor_rows(runs: Sequence[Run], source: str | None = None) -> list[dict]:
    """The :func:`predictor_row` of every run, in order."""
    return [predictor_row(r, source) for r in runs]


def correlate_runs(runs: Sequence[Run], seed: int = 0, source: str | None = None,
                   min_domain_size: int | None = None) -> dict:
    """:func:`~landscape.report.granulated.predictors` over the measures that some run has, plus the rows.

    ``not_invariant``: measure -> names of the runs whose value of it is not invariant (tables mark it).
    """
    rows = predictor_rows(runs, source)
    present = [m for m in REGISTRY if any(r["measures"].get(m) is not None for r in rows)]
    out = predictors(rows, present, seed=seed, min_domain_size=min_domain_size)
    out["rows"] = rows
    out["units"] = {m: REGISTRY[m].units for m in present}
    out["not_invariant"] = {m: [r["name"] for r in rows if m in r["not_invariant"]] for m in present}
    return out


def correlate(inputs: Sequence[str | Path], seed: int = 0, source: str | None = None,
              min_domain_size: int | None = None, progress: bool = True) -> dict:
    """Which measure predicts generalization over the runs ``inputs`` (nothing is computed: records only).

    ``seed`` seeds the robust sign error's chance permutations (every other number is exact).

    ``min_domain_size``: external domains with fewer images are left out of
    the robust views (default :data:`landscape.report.robust.MIN_DOMAIN_SIZE`, 50).
    """
    if min_domain_size is not None and (isinstance(min_domain_size, bool) or not isinstance(min_domain_size, int)
                                        or min_domain_size < 1):
        raise LandscapeError(f"min_domain_size must be a positive integer, got {min_domain_size!r}")
    runs, _ = collect(inputs, compute=False, seed=seed, progress=progress)
    return correlate_runs(runs, seed=seed, source=source, min_domain_size=min_domain_size)
