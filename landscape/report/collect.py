"""Gather what a report shows about each run: metadata, test metrics and analysis records.

An input is a checkpoint file, a run folder (its ``final.pt``) or a folder of
run folders. For every run the newest cached record that provides each
quantity is used (the quantities of every registered
:class:`~landscape.analysis.AnalysisSpec`); with ``compute=True`` a missing one
is computed by its analysis with the spec's ``report_defaults`` and cached in
the run's ``analysis/``; with ``compute=False`` it is listed in ``missing``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from landscape.analysis import cached, columns, get_analysis, list_analyses, quantities
from landscape.checkpoint import load_checkpoint, read_payload, resolve_checkpoint_path
from landscape.checkpoint.cache import newest_for
from landscape.errors import LandscapeError
from landscape.io import sha256_bytes
from landscape.measures import REGISTRY
from landscape.progress import progress_bar

METRIC_SPLITS = ("test", "train")


@dataclass
class Run:
    """One checkpoint with its metadata, the analysis record behind each quantity (``found``) and behind each
    flatness measure that an analysis shows as a column (``measured``; see :func:`landscape.analysis.columns`).
    """

    path: Path
    meta: dict
    sha: str  # first 16 hex digits of the checkpoint file's SHA-256, as analyses record it
    found: dict[str, dict | None] = field(default_factory=dict)
    measured: dict[str, dict | None] = field(default_factory=dict)

    @property
    def run_dir(self) -> Path:
        return self.path.parent

    @property
    def name(self) -> str:
        """The run folder's name, plus the file when it is not ``final.pt``."""
        return self.run_dir.name if self.path.name == "final.pt" else f"{self.run_dir.name}/{self.path.name}"

    @property
    def optimizer(self) -> str:
        return str(self.meta["optimizer"]["name"])

    @property
    def model(self) -> str:
        return str(self.meta["model"]["name"])

    @property
    def seed(self) -> int:
        return int(self.meta["seed"])

    @property
    def data(self) -> str:
        return str(self.meta["data"]["source"])

    @property
    def split_hash(self) -> str:
        return str(self.meta["data"]["split"]["hash"])

    def metrics(self, split: str) -> dict:
        """Metrics of ``split`` from the checkpoint (or the cached ``metrics`` record)."""
        return dict((self.meta.get("metrics") or {}).get(split) or {})


def resolve_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """Checkpoint paths of the inputs, in order, without duplicates.

    A folder without ``final.pt`` that contains run folders stands for all of them.
    """
    if not inputs:
        raise LandscapeError("no runs given: pass run folders or checkpoint files")
    out: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir() and not (item / "final.pt").exists():
            children = sorted(p / "final.pt" for p in item.iterdir() if (p / "final.pt").is_file())
            if not children:
                raise LandscapeError(f"{item} is neither a finished run folder (no final.pt) nor a folder of finished "
                                     "runs")
            paths = children
        else:
            paths = [resolve_checkpoint_path(item)]
        out.extend(p.resolve() for p in paths if p.resolve() not in out)
    return out


def collect(inputs: Sequence[str | Path], compute: bool = True, seed: int = 0, progress: bool = True,
            analyses: dict[str, dict] | None = None, m: int | None = None,
            dry_run: bool = False, only: Sequence[str] | None = None) -> tuple[list[Run], list[dict]]:
    """Load every run and find (or compute) each quantity that a registered analysis provides.

    ``analyses`` overrides keyword arguments per analysis (names of
    :func:`~landscape.analysis.list_analyses`) used when a quantity has to be
    computed; by default each spec's ``report_defaults`` with ``seed`` (see
    :func:`run_analysis`; ``m`` is the m-sharpness sub-batch size, adapted to the data when None).
    Returns the runs and the missing items ``[{"run", "quantity"}]``.
    Before computing, the plan of the missing analyses (runs x analyses x
    ETA, :mod:`landscape.report.costs`) is printed when ``progress``; with
    ``dry_run`` it is printed and nothing is computed (the runs are returned
    as found, with an empty missing list). ``only`` names the analyses whose
    quantities are planned, computed and listed as missing (default: all).
    """
    names = list_analyses() if only is None else [get_analysis(n).name for n in only]
    wanted = {q for n in names for q in get_analysis(n).provides}
    paths = resolve_inputs(inputs)
    runs = [Run(p, *_meta(p)) for p in paths]
    if dry_run or (compute and progress):
        _plan(runs, seed, analyses or {}, m, names)
        if dry_run:
            return runs, []
    missing: list[dict] = []
    with progress_bar("report: analyses", total=len(runs), enabled=progress) as bar:
        for run in runs:
            bar.update(run=run.name)
            _find_all(run)
            if compute and (any(run.found[q] is None for q in wanted) or _lacks_metrics(run)):
                _compute_missing(run, seed, progress, analyses or {}, m, names)
                _find_all(run)
            missing.extend({"run": run.name, "quantity": q} for q, rec in run.found.items()
                           if rec is None and q in wanted)
            missing.extend({"run": run.name, "quantity": f"{s} metrics"} for s in METRIC_SPLITS if not run.metrics(s))
            bar.advance()
    return runs, missing


def measure_analyses() -> list[str]:
    """The registered analyses whose records hold measures of :data:`landscape.measures.REGISTRY` (what
    ``landscape correlate`` computes), in registration order.
    """
    sources = {spec.source for spec in REGISTRY.values()}
    return [name for name in list_analyses() if get_analysis(name).kind in sources]


def _plan(runs: list[Run], seed: int, analyses: dict[str, dict], m: int | None, names: list[str]) -> list[dict]:
    """Print the plan of every analysis of ``names`` the runs lack (nothing is computed)."""
    from landscape.report.costs import build_plan, print_plan

    todo = []
    for run in runs:
        _find_all(run)
        todo.append((run, [name for name in names
                           if any(run.found[q] is None for q in get_analysis(name).provides)]))
    rows = build_plan(todo, lambda ck, name: get_analysis(name).settings(ck, seed, analyses.get(name), {"m": m}))
    print_plan(rows)
    return rows


def _meta(path: Path) -> tuple[dict, str]:
    """The checkpoint's metadata (with cached metrics merged in) and its file hash."""
    payload = read_payload(path)
    payload.pop("state_dict", None)
    payload.pop("optimizer_state", None)
    sha = sha256_bytes(path.read_bytes())[:16]
    stored = _newest(path, sha, "metrics", lambda r: "test" in r["result"])  # not external-only records
    if stored is not None:
        payload["metrics"] = {**stored["result"], **(payload.get("metrics") or {})}
    return payload, sha


def _lacks_metrics(run: Run) -> bool:
    return any(not run.metrics(s) for s in METRIC_SPLITS)


def _find_all(run: Run) -> None:
    run.found = {q: _newest(run.path, run.sha, kind, test) for q, (kind, test) in quantities().items()}
    specs = {name: REGISTRY[name] for name in columns()}
    run.measured = {name: _newest(run.path, run.sha, spec.source, lambda r, s=spec: s.extract(r) is not None)
                    for name, spec in specs.items()}


def _newest(path: Path, sha: str, kind: str, test: Callable[[dict], bool]) -> dict | None:
    """The newest record of ``kind`` for exactly this checkpoint file that passes ``test`` (see ``newest_for``)."""
    return newest_for(path, sha, kind, test)


def run_analysis(ck, name: str, seed: int = 0, overrides: dict | None = None, progress: bool = True,
                 m: int | None = None) -> dict:
    """Run analysis ``name`` (a registered :class:`~landscape.analysis.AnalysisSpec`) on a loaded checkpoint.

    Keyword arguments: :meth:`~landscape.analysis.AnalysisSpec.settings` (the driver's defaults, the
    spec's ``report_defaults``, ``overrides``, fitted to ``ck``); the report option ``m`` (the
    m-sharpness sub-batch size) goes to every driver that takes an ``m``, used as given. Returns the
    (cached) record.
    """
    return get_analysis(name).run(ck, seed, overrides, progress, {"m": m})


def _compute_missing(run: Run, seed: int, progress: bool, analyses: dict[str, dict], m: int | None,
                     names: list[str]) -> None:
    """Run the analyzers of ``names`` for what ``run`` lacks; they cache into ``analysis/``."""
    ck = load_checkpoint(run.path)
    if _lacks_metrics(run):
        _compute_metrics(ck, run)
    for name in names:
        if any(run.found[q] is None for q in get_analysis(name).provides):
            run_analysis(ck, name, seed, analyses.get(name), progress, m)


def _compute_metrics(ck, run: Run) -> None:
    """Test and train metrics of a checkpoint that does not carry them (e.g. an epoch file), cached as ``metrics``."""
    from landscape.train import split_metrics

    def compute(settings: dict) -> tuple[dict, dict]:
        return {s: split_metrics(ck.model, *ck.tensors(s), ck.classes) for s in METRIC_SPLITS}, {}

    result = cached(ck, "metrics", {}, compute)["result"]
    run.meta["metrics"] = {**result, **{k: v for k, v in (run.meta.get("metrics") or {}).items() if v}}
