"""Shared fixtures: the CLI runner and paths to the real data."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

# Two cores are shared by two pytest-xdist workers: one thread each avoids oversubscription,
# which makes small-tensor tests many times slower.
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
BUSI = Path(os.environ.get("LANDSCAPE_BUSI", ROOT.parent / "shared" / "data" / "busi"))


@pytest.fixture(scope="session", autouse=True)
def data_cache(tmp_path_factory):
    """The decoded-data cache of the whole session: a temp folder, so tests never write to ~/.cache."""
    folder = tmp_path_factory.mktemp("landscape-cache")
    old = os.environ.get("LANDSCAPE_CACHE")
    os.environ["LANDSCAPE_CACHE"] = str(folder)  # subprocesses (CLI, torchrun) inherit it
    yield folder
    if old is None:
        os.environ.pop("LANDSCAPE_CACHE", None)
    else:
        os.environ["LANDSCAPE_CACHE"] = old


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys):
    """Run ``landscape ARGS...`` in-process; returns exit code, stdout and stderr."""
    from landscape.cli import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def busi_dir() -> Path:
    """The real BUSI copy beside the project; tests using it skip when absent."""
    if not (BUSI / "benign").is_dir():
        pytest.skip(f"BUSI not found at {BUSI}")
    return BUSI


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A finished 2-epoch cnn-tiny run on the phantom at 32 px (all epoch files kept).

    Shared by the analysis tests; treat it as read-only except for its ``analysis/``.
    Returns the run folder.
    """
    from landscape.train import TrainConfig, train

    cfg = TrainConfig(model="cnn-tiny", img_size=32, epochs=2, out=str(tmp_path_factory.mktemp("tiny-run")))
    return train(cfg, progress=False).run_dir


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory):
    """Two finished 1-epoch cnn-tiny runs (adam, sam) on the phantom at 32 px: same seed, init and split.

    Shared by the report tests; treat them as read-only (copy a run folder to change it).
    Returns the two run folders.
    """
    from landscape.train import TrainConfig, train_all

    cfg = TrainConfig(model="cnn-tiny", img_size=32, epochs=1, out=str(tmp_path_factory.mktemp("tiny-runs")))
    return [r.run_dir for r in train_all(cfg, ["adam", "sam"], progress=False)]


@pytest.fixture
def bare_runs(tiny_runs, tmp_path):
    """Copies of the two :func:`tiny_runs` without any analysis record (free to change)."""
    import shutil

    out = []
    for run in tiny_runs:
        dst = tmp_path / "runs" / run.name
        shutil.copytree(run, dst, ignore=shutil.ignore_patterns("analysis"))
        out.append(dst)
    return out


@pytest.fixture
def quick_analyses(monkeypatch):
    """Every registered analysis at its `study --quick` settings when the report (or `correlate`) computes it."""
    import dataclasses

    from landscape.analysis import registry

    for name, spec in list(registry._REGISTRY.items()):
        monkeypatch.setitem(registry._REGISTRY, name, dataclasses.replace(
            spec, report_defaults={**spec.report_defaults, **spec.quick_defaults}))
