"""``run_study``: train every (model, optimizer, seed), analyse every run, write the report.

Resumable by construction: training goes through ``landscape.train`` with
``resume=True`` (a finished run with the same configuration is reused, an
interrupted one continues from its last epoch file, a finished run with other
settings is an error), and every analysis is cached in the run's ``analysis/``.
A second call therefore trains and computes nothing that is already done.
Under ``torchrun`` the runs are dealt out over the ranks or trained data
parallel one after another (:mod:`landscape.study.parallel`); rank 0 writes
the report once every rank is done.

Training has two phases: every candidate of the grid, then (with
``compute_matched``, after the validation-only selection) the compute-matched
copies, whose gradient budgets are the selected target runs' counts.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from landscape import distributed, logs
from landscape.checks import check_seed, check_unique
from landscape.errors import LandscapeError
from landscape.io import check_writable, versions, write_json
from landscape.progress import progress_bar
from landscape.study.grid import (
    SELECT_METRICS,
    matched_targets,
    matched_variant,
    select,
    tuning_budgets,
    unequal_budgets,
    variants,
)
from landscape.study.parallel import deal, parallel_mode
from landscape.study.presets import FULL, QUICK, Preset
from landscape.train.all import check_hyper


def stages(external: bool = False) -> tuple[str, ...]:
    """The study's timing stages: training, each registered analysis's ``stage`` (in order), ``evaluate``
    (the cross-site evaluation, with ``external``), the report.
    """
    from landscape.analysis import get_analysis, list_analyses

    middle = dict.fromkeys(get_analysis(n).stage for n in list_analyses())
    return ("train", *middle, *(("evaluate",) if external else ()), "report")


@dataclass
class StudyResult:
    """What a study produced: the report, its run folders, and where the time went."""

    report: Path
    summary: Path
    run_dirs: list[Path]
    trained: list[str]
    reused: list[str]
    seconds: dict[str, float] = field(default_factory=dict)


def run_study(data: str | Path | None = None, models: Sequence[str] = ("cnn-small",),
              optimizers: str | Sequence[str] = "all",
              seeds: int | None = None, epochs: int | None = None, out: str | Path = "checkpoints",
              quick: bool = False, progress: bool = True, seed: int = 0, img_size: int | None = None,
              parallel: str | None = None, batch_size: int | None = None, m: int | None = None,
              analyses: dict[str, dict] | None = None, external: str | Path | None = None,
              external_options: dict | None = None, grid: dict | None = None, select_by: str = "balanced_accuracy",
              compute_matched: bool | str | Sequence[str] = False, stop_train_loss: float | None = None,
              augment: bool = True, pretrained: bool = False, weights: dict[str, str | Path] | None = None,
              in_chans: int = 1,
              classes: Sequence[str] | str | None = None, tensorboard: bool = False,
              tensorboard_dir: str | Path | None = None) -> StudyResult:
    """Train, analyse and report a whole study; returns a :class:`StudyResult`.

    ``optimizers``: ``"all"``, a comma list or a sequence of names. Seeds are
    ``seed, seed+1, ...`` (``seeds`` of them); all runs share the split drawn
    with ``seed``, and the runs of one seed share their initial weights.
    ``quick`` uses :data:`~landscape.study.presets.QUICK` (built-in phantom
    unless ``data`` is given); otherwise :data:`~landscape.study.presets.FULL`.
    Explicit ``seeds``/``epochs``/``img_size``/``batch_size`` override the
    preset; ``analyses`` overrides analyzer settings on top of the preset's
    (as ``build_report``'s), and ``m`` the m-sharpness
    sub-batch size (None: the preset's or 128, capped at the training images).
    ``external`` (a folder) is evaluated by every run with
    :func:`landscape.analysis.external.analyze`, ``external_options``
    being its keyword arguments (``csv``, ``file_col``, ``label_col``,
    ``group_col``, ``env_col``, ``n_boot``). Every model name and setting is
    validated before the first run starts. Writes
    ``<out>/report.html``, ``<out>/report.json`` and ``<out>/study.json``.
    ``parallel``: ``runs`` or ``data`` under ``torchrun`` (see
    :mod:`landscape.study.parallel`; default ``runs`` when there are enough runs).

    Fair comparisons (:mod:`landscape.study.grid`): ``grid``
    (``{optimizer or "*": {param: [values]}}``) trains every setting and keeps,
    per (model, optimizer), the one with the best mean validation
    ``select_by`` over seeds; only the selected runs are analysed, evaluated
    externally and reported, and ``study.json`` records every candidate's
    validation scores (``selection``) and its number of candidates
    (``tuning_budget``); groups with different numbers get a warning.
    ``compute_matched`` (True: ``"sam"``; or the name(s) of multi-pass
    optimizers of the study) adds, after the selection, for each seed and each
    one-pass optimizer at its selected setting, a copy that takes as many
    gradient evaluations as the target's selected run of the same seed and
    model (group ``adam-cm``, or ``adam-cm-<target>`` for a target other than
    SAM; :mod:`landscape.study.grid`); ``stop_train_loss``, ``classes`` and
    ``augment`` (False: no random flip and affine; Jiang et al. train without augmentation) go to every run's
    ``TrainConfig``. ``pretrained`` starts every model from timm's pretrained weights (its local cache),
    ``weights`` maps a model name to a local weights file or cache folder (:mod:`landscape.models.weights`;
    each checked against its architecture before any run starts), ``in_chans`` 3 replicates grey images to
    RGB, as for fine-tuning a pretrained backbone (docs/finetuning.md).
    ``tensorboard`` writes every run's training scalars to ``<tensorboard_dir>/<run name>``
    (default ``<out>/tensorboard``).
    Also writes ``<out>/runs.csv`` and ``<out>/tables.tex`` (:mod:`landscape.report.export`).
    """
    from landscape.report.overrides import check_overrides
    from landscape.study.checks import check_models
    from landscape.train import TrainConfig, parse_optimizers

    preset: Preset = QUICK if quick else FULL
    names = parse_optimizers(optimizers if isinstance(optimizers, str) else ",".join(optimizers))
    models = [name.strip() for item in ([models] if isinstance(models, str) else models)
              for name in item.split(",") if name.strip()]
    seeds = preset.seeds if seeds is None else seeds
    epochs = preset.epochs if epochs is None else epochs
    img_size = preset.img_size if img_size is None else img_size
    if not models:
        raise LandscapeError("models is empty: pass at least one model name")
    check_unique(models, "models")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise LandscapeError(f"seeds must be an integer >= 1, got {seeds!r}")
    check_seed(seed)
    check_seed(seed + seeds - 1, "seed + seeds - 1")
    batch_size = preset.batch_size if batch_size is None else batch_size
    user, preset_analyses = dict(analyses or {}), preset.analyses()
    wanted = {k: {**preset_analyses.get(k, {}), **user.get(k, {})} for k in [*preset_analyses, *user]}
    analyses = check_overrides(wanted, m)
    if external is not None:
        from landscape.analysis.external import check_options

        check_options(external, **(external_options or {}))
    out = Path(out)
    check_writable(out, folder=True)
    base = TrainConfig(data=None if data is None else str(data), epochs=epochs, img_size=img_size,
                       batch_size=batch_size, split_seed=seed, keep=preset.keep, out=str(out),
                       stop_train_loss=stop_train_loss, classes=classes, augment=augment, pretrained=pretrained,
                       in_chans=in_chans, tensorboard=tensorboard,
                       tensorboard_dir=str(tensorboard_dir or out / "tensorboard") if tensorboard else None).validate()
    check_models(models, img_size)
    weights = {str(k): str(v) for k, v in (weights or {}).items()}
    unknown = sorted(set(weights) - set(models))
    if unknown:
        raise LandscapeError(f"weights names model(s) {', '.join(unknown)} that the study does not train "
                             f"({', '.join(models)})")
    for model, path in weights.items():  # a file of another architecture fails here, before any run
        base.replace(model=model, weights=path, pretrained=False).validate()
    if select_by not in SELECT_METRICS:
        raise LandscapeError(f"select_by must be one of {', '.join(SELECT_METRICS)}, got {select_by!r}")
    plan = variants(names, grid)
    targets = matched_targets(names, compute_matched)
    baselines = [n for n in names if _passes(n) == 1] if targets else []
    budgets = tuning_budgets(plan)
    unequal = unequal_budgets(budgets)
    if unequal and distributed.is_main():
        warnings.warn(unequal, stacklevel=2)
    for v in plan:  # before any work: a grid value the optimizer refuses (rho=abc) must not train its defaults
        cfg = v.config(base).validate()
        check_hyper([v.optimizer], cfg.opt_args, cfg.base)
    settings = {"data": base.data, "models": models, "optimizers": names, "seeds": list(range(seed, seed + seeds)),
                "epochs": epochs, "img_size": img_size, "batch_size": batch_size, "quick": quick,
                "analyses": analyses, "m": m, "seed": seed,
                "external": None if external is None else str(external), "external_options": external_options,
                "grid": grid, "select_by": select_by, "compute_matched": targets, "tuning_budget": budgets,
                "stop_train_loss": stop_train_loss, "classes": base.classes, "augment": augment,
                "pretrained": pretrained, "weights": weights, "in_chans": in_chans,
                "selection_data": "validation split only (test and external data are never used to choose)"}
    n_matched = len(models) * seeds * len(baselines) * len(targets)
    n_runs = len(models) * seeds * len(plan) + n_matched
    mode = parallel_mode(parallel, n_runs)
    settings["parallel"] = {"mode": mode, "world_size": distributed.world_size()}
    seconds = dict.fromkeys(stages(external is not None), 0.0)
    n_stages = len(seconds) - 2
    before = _final_mtimes(out)
    run_dirs: list[Path] = []
    jobs = [(arch, s, v) for arch in models for s in settings["seeds"] for v in plan]
    # one step per training run, one per analysis stage of each selected run, one for the report
    with progress_bar("study", total=n_runs * (1 + n_stages) + 1, enabled=progress, unit="stages") as bar:
        def train_one(job):  # returns the run folder and its seconds by stage
            model, s, variant, *matched = job  # matched: (gradient budget, matched run folder) of a cm copy
            spent = dict.fromkeys(seconds, 0.0)
            bar.update(f"study: train {model} {variant.group} {variant.tag} seed {s}")
            own = {"weights": weights[model], "pretrained": False} if model in weights else {}
            return _train(variant.config(base.replace(model=model, seed=s, **own), *matched), [variant.optimizer],
                          progress,
                          spent, bar)[0], spent

        def analyse_one(run_dir: Path):
            from landscape.checkpoint import load_checkpoint

            spent = dict.fromkeys(seconds, 0.0)
            bar.update(f"study: analyse {run_dir.name}")
            with logs.run_context(run_dir.name):
                ck = load_checkpoint(run_dir)  # once for every analysis of the run
                _analyse(ck, analyses, seed, progress, spent, bar, m)
                if external is not None:
                    _evaluate(ck, external, external_options, seed, progress, spent, bar)
            return spent

        done, owners = _train_jobs(jobs, train_one, mode)
        all_dirs = [d for d, _ in done]
        selection = select([(a, s, v, d) for (a, s, v), d in zip(jobs, all_dirs)], select_by)
        for key, entry in selection.items():
            entry["tuning_budget"] = budgets[key.split("/", 1)[1]]
        if targets:  # phase 2: the compute-matched copies, at the baselines' selected settings
            cm_jobs = _matched_jobs(models, settings["seeds"], baselines, targets, plan, selection)
            cm_done, cm_owners = _train_jobs(cm_jobs, train_one, mode)
            cm_dirs = [d for d, _ in cm_done]
            selection.update(_matched_selection(cm_jobs, cm_dirs, select_by, budgets))
            done, owners, all_dirs = done + cm_done, owners + cm_owners, all_dirs + cm_dirs
        chosen = {d for entry in selection.values() for d in entry["selected_runs"]}
        run_dirs = [d for d in all_dirs if str(d) in chosen]
        bar.advance((n_runs - len(run_dirs)) * n_stages)  # unselected candidates are not analysed
        spent_all = [spent for _, spent in done]
        if mode == "runs":
            analysed, _ = deal(run_dirs, analyse_one)
            settings["parallel"]["ranks"] = {d.name: r for d, r in zip(all_dirs, owners)}
        else:
            analysed = [analyse_one(d) for d in run_dirs]
        spent_all += analysed
        seconds = {stage: sum(sp[stage] for sp in spent_all) for stage in seconds}
        bar.update("study: report")
        t0 = time.perf_counter()
        from landscape.report import build_report

        report = out / "report.html"
        tables = {"csv": out / "runs.csv", "latex": out / "tables.tex"}
        if distributed.is_main():
            report = build_report(run_dirs, report, compute=False, progress=progress, seed=seed, selection=selection)
            _export(run_dirs, tables, seed)
        seconds["report"] += time.perf_counter() - t0
        bar.advance()
    trained = [_label(d, out) for d in all_dirs if before.get(d / "final.pt") != _mtime(d / "final.pt")]
    reused = [_label(d, out) for d in all_dirs if _label(d, out) not in trained]
    summary = write_json(out / "study.json", {
        "settings": settings, "runs": [str(d) for d in run_dirs], "selection": selection,
        "candidates": [str(d) for d in all_dirs], "trained": trained, "reused": reused,
        "seconds": seconds, "report": str(report), "tables": {k: str(v) for k, v in tables.items()},
        "versions": versions(),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    result = StudyResult(report, summary, run_dirs, trained, reused, seconds)
    distributed.barrier()  # the report and study.json are on disk for every rank
    if progress and distributed.is_main():
        _print(result)
    return result


def _export(run_dirs: list[Path], tables: dict, seed: int) -> None:
    """The tidy CSV and the LaTeX tables of the study's runs beside its report (:mod:`landscape.report.export`)."""
    from landscape.report.collect import collect
    from landscape.report.export import export

    runs, _ = collect(run_dirs, compute=False, seed=seed, progress=False)
    export(runs, csv_path=tables["csv"], latex_path=tables["latex"], seed=seed)


def _passes(optimizer: str) -> int:
    from landscape.optim import get_optimizer

    return get_optimizer(optimizer).passes


def _train_jobs(jobs: list, train_one, mode: str) -> tuple[list, list[int]]:
    """``(results, rank of each job)``: dealt out over the ranks in ``runs`` mode, else one after another."""
    if mode == "runs":
        return deal(jobs, train_one)
    return [train_one(job) for job in jobs], [0] * len(jobs)


def _matched_jobs(models: list[str], seeds: list[int], baselines: list[str], targets: list[str], plan: list,
                  selection: dict) -> list[tuple]:
    """``(model, seed, variant, gradient budget, matched run)`` of every compute-matched copy: each one-pass
    ``baselines`` optimizer at its selected setting, per target, with the gradient evaluations of the target's
    selected run of the same model and seed.
    """
    from landscape.train.matching import matched_budget

    out = []
    for model in models:
        for target in targets:
            chosen = selection[f"{model}/{target}"]
            if chosen["selected"] is None:
                raise LandscapeError(f"compute_matched: no run of {model}/{target} has a validation score to select "
                                     "it by, so there is no run to match", params=("compute_matched",))
            by_seed = {b["seed"]: b for b in map(matched_budget, chosen["selected_runs"])}
            for name in baselines:
                entry = selection[f"{model}/{name}"]
                if entry["selected"] is None:
                    raise LandscapeError(f"compute_matched: no run of {model}/{name} has a validation score to "
                                         "select its setting by", params=("compute_matched",))
                baseline = next(v for v in plan if v.group == name and v.tag == entry["selected"])
                variant = matched_variant(baseline, target, chosen["selected_setting"])
                for s in seeds:
                    out.append((model, s, variant, by_seed[s]["gradient_evaluations"], by_seed[s]["run"]))
    return out


def _matched_selection(cm_jobs: list[tuple], cm_dirs: list[Path], select_by: str, budgets: dict) -> dict:
    """The selection entries of the compute-matched groups: one candidate each (the baseline's selected setting),
    the baseline's ``tuning_budget``, and ``matched_to`` (the target group, its selected setting and the gradient
    budget of each seed's copy).
    """
    out = select([(a, s, v, d) for (a, s, v, *_), d in zip(cm_jobs, cm_dirs)], select_by)
    for (model, _s, variant, budget, _run) in cm_jobs:
        entry = out[f"{model}/{variant.group}"]
        entry["tuning_budget"] = budgets[variant.optimizer]
        matched = entry.setdefault("matched_to", {"group": f"{model}/{variant.matched_to}",
                                                  "setting": variant.target_setting, "gradient_budgets": []})
        matched["gradient_budgets"].append(budget)
    return out


def _train(cfg, names: list[str], progress: bool, seconds: dict, bar) -> list[Path]:
    """Train (or reuse, or resume) every optimizer of one (model, seed)."""
    from landscape.train import train_all

    t0 = time.perf_counter()
    results = train_all(cfg, names, progress=progress, resume=True)
    seconds["train"] += time.perf_counter() - t0
    bar.advance(len(results))
    return [r.run_dir for r in results]


def _analyse(ck, analyses: dict, seed: int, progress: bool, seconds: dict, bar, m: int | None = None) -> None:
    """Every registered analysis of loaded checkpoint ``ck``, as the report needs it (each cached), timed by stage."""
    from landscape.analysis import get_analysis
    from landscape.report.collect import run_analysis

    by_stage: dict[str, list[str]] = {}
    for name in analyses:
        by_stage.setdefault(get_analysis(name).stage, []).append(name)
    for stage, names in by_stage.items():
        t0 = time.perf_counter()
        for name in names:
            run_analysis(ck, name, seed, analyses.get(name), progress, m)
        seconds[stage] += time.perf_counter() - t0
        bar.advance()


def _evaluate(ck, external, external_options: dict | None, seed: int, progress: bool, seconds: dict, bar) -> None:
    """The cross-site evaluation of loaded checkpoint ``ck`` on ``external`` (cached as a ``metrics`` record)."""
    from landscape.analysis.external import analyze

    t0 = time.perf_counter()
    analyze(ck, external, **(external_options or {}), seed=seed, progress=progress)
    seconds["evaluate"] += time.perf_counter() - t0
    bar.advance()


def _label(run_dir: Path, out: Path) -> str:
    """A run folder's name relative to the study folder (``tag/name`` for grid candidates)."""
    return run_dir.relative_to(out).as_posix() if run_dir.is_relative_to(out) else run_dir.name


def _final_mtimes(out: Path) -> dict[Path, int]:
    return {p: _mtime(p) for pattern in ("*/final.pt", "*/*/final.pt") for p in out.glob(pattern)} if out.is_dir() \
        else {}


def _mtime(path: Path) -> int | None:
    return path.stat().st_mtime_ns if path.exists() else None


def _print(result: StudyResult) -> None:
    from rich.table import Table

    table = Table(title="study: wall time by stage", title_justify="left")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    for stage, sec in result.seconds.items():
        table.add_row(stage, f"{sec:.1f}")
    table.add_row("total", f"{sum(result.seconds.values()):.1f}")
    console = logs.console()
    console.print(table)
    console.print(f"runs: {len(result.run_dirs)} ({len(result.trained)} trained, {len(result.reused)} reused)",
                  markup=False)
    console.print(f"summary: {result.summary}", markup=False)  # build_report printed the report's path
    console.print(f"tables: {result.summary.parent / 'runs.csv'}, {result.summary.parent / 'tables.tex'}",
                  markup=False)
