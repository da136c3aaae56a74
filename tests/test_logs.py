"""Plain progress lines for batch jobs: one per epoch naming the run, heartbeats, plan lines, --quiet/--verbose."""

from __future__ import annotations

import re
import time

import pytest

from landscape import logs
from landscape.cli import hoist_global
from landscape.cost import announce
from landscape.progress import progress_bar

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


@pytest.fixture
def lines(capsys):
    """The logger set up as the CLI does; returns a function giving the stdout lines so far."""
    logs.setup(0)

    def read() -> list[str]:
        return capsys.readouterr().out.splitlines()

    yield read
    logs.setup(0)


def test_train_logs_one_line_per_epoch_naming_the_run(cli, tmp_path):
    res = cli("train", "--model", "cnn-tiny", "--img-size", "32", "--epochs", "2", "--out", tmp_path)
    assert res.code == 0, res.err
    run = "phantom-cnn-tiny-adam-s0"
    epochs = [line for line in res.out.splitlines() if re.match(rf"{STAMP} {run}: epoch \d/2: train loss ", line)]
    assert [re.search(r"epoch (\d)/2", e).group(1) for e in epochs] == ["1", "2"]
    assert all(re.search(r"val balanced accuracy \d\.\d{3}, \d+\.\d s$", e) for e in epochs)
    assert re.search(rf"{STAMP} train {run}: finished 34 steps in ", res.out)
    assert "test metrics (final weights)" in res.out


def test_quiet_after_the_command_drops_progress_but_not_results(cli, tmp_path):
    res = cli("train", "--model", "cnn-tiny", "--img-size", "32", "--epochs", "1", "--out", tmp_path, "-q")
    assert res.code == 0, res.err
    assert "epoch 1/1" not in res.out and "test metrics (final weights)" in res.out
    both = cli("train", "--quiet", "--verbose")
    assert both.code == 2 and both.err.strip() == "error: --quiet and --verbose exclude each other"


def test_hoist_global_moves_only_global_flags_before_the_double_dash():
    assert hoist_global(["train", "--epochs", "2", "-q"]) == ["-q", "train", "--epochs", "2"]
    assert hoist_global(["hessian", "RUN", "--", "-v"]) == ["hessian", "RUN", "--", "-v"]


def test_heartbeat_after_silence_names_the_run_and_the_units(lines, monkeypatch):
    monkeypatch.setattr(logs, "HEARTBEAT_S", 0.3)
    lines()
    with logs.run_context("run-a"), progress_bar("Hessian", 10, unit="HVPs") as bar:
        bar.advance(3)
        time.sleep(1.0)
        bar.advance(2)
    out = lines()
    beats = [line for line in out if "done," in line]
    assert 2 <= len(beats) <= 4  # one per 0.3 s of silence in 1 s, checked every 75 ms
    assert re.fullmatch(rf"{STAMP} run-a: Hessian: 3/10 HVPs done, \d+ s", beats[0])
    assert re.fullmatch(rf"{STAMP} run-a: Hessian: finished 5 HVPs in \d+\.\d s", out[-1])


def test_no_heartbeat_while_lines_keep_coming(lines, monkeypatch):
    monkeypatch.setattr(logs, "HEARTBEAT_S", 0.4)
    lines()
    with logs.run_context("run-b"), progress_bar("train", 4, unit="steps") as bar:
        for k in range(4):
            time.sleep(0.15)
            bar.advance()
            bar.note(f"epoch {k + 1}/4")
    out = lines()
    assert len(out) == 5  # four epochs and the final line, no heartbeat
    assert [line.split(" ", 1)[1] for line in out[:4]] == [f"run-b: epoch {k}/4" for k in range(1, 5)]
    assert "run-b: train: finished 4 steps" in out[-1]


def test_plan_lines_name_their_run_and_quiet_silences_them(lines):
    lines()
    with logs.run_context("busi-cnn-small-sam-s1"):
        announce("Hessian plan: ~44 HVPs")
        logs.setup(-1)
        announce("surface plan: ~2 forward passes")
        with progress_bar("surface", 2) as bar:
            bar.note("not shown")
    out = lines()
    assert len(out) == 1
    assert re.fullmatch(rf"{STAMP} busi-cnn-small-sam-s1: Hessian plan: ~44 HVPs", out[0])


@pytest.mark.parametrize("width", [80, 200])
def test_report_summary_table_fits_the_terminal(monkeypatch, width):
    import io
    from pathlib import Path

    from rich.console import Console

    from landscape.report import build

    buf = io.StringIO()
    monkeypatch.setattr(logs, "console", lambda stderr=False: Console(file=buf, width=width, highlight=False))
    stat = {"mean": 0.73812, "std": 0.02615, "n": 3}
    measures = {"lambda_max": "λ_max", "hessian_trace": "trace", "sharpness_worst": "m-sharpness"}
    keys = ("balanced_accuracy", "gap", *measures)
    groups = [{"group": g, "n_runs": 3, **dict.fromkeys(keys, stat)} for g in ("adam", "sam", "asam")]
    build._print_summary({"title": "t", "summary": {"groups": groups, "measures": measures}, "missing": []},
                         Path("r.html"))
    lines = buf.getvalue().splitlines()
    rows = [line for line in lines if line.startswith("│ ")]
    assert max(map(len, lines)) <= width and len(rows) == 3  # one line per group: nothing wrapped
    if width == 80:  # mean ± std does not fit: means only, and the caption says so
        assert rows[0].count("0.738") == 5 and "±" not in rows[0]
        assert any("means over seeds (± std in the report)" in line for line in lines)
    else:
        assert rows[0].count("0.738 ± 0.026") == 5
    assert lines[-1] == "report: r.html"
