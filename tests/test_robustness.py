"""Run folders nothing can corrupt, checks before work, exit code 2 for every user error.

One test per failure mode, a fault-injection test with two writers on one run
folder, and a property-style test: every command, given bad values for its
options, exits 2 with one ``error:`` line and writes nothing.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from landscape.errors import LandscapeError
from landscape.io import atomic_torch_save, safe_torch_load
from landscape.runlock import LOCK_NAME, StaleLockWarning, run_lock
from landscape.train import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(model="cnn-tiny", img_size=16, batch_size=32)


def _cfg(tmp_path, **kw) -> TrainConfig:
    return TrainConfig(out=str(tmp_path / "runs"), **{**TINY, **kw})


def _one_error(res) -> str:
    """Exit code 2 and exactly one line on stderr, starting with 'error: '; returns it."""
    lines = [line for line in res.err.splitlines() if line.strip()]
    assert res.code == 2, (res.code, res.out, res.err)
    assert len(lines) == 1 and lines[0].startswith("error: "), res.err
    assert "internal error" not in lines[0]
    return lines[0]


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


@pytest.fixture
def run_copy(tiny_run, tmp_path) -> Path:
    """A private copy of the shared tiny run (free to change)."""
    dst = tmp_path / "run"
    shutil.copytree(tiny_run, dst, ignore=shutil.ignore_patterns("analysis"))
    return dst


def _edit_checkpoint(path: Path, edit) -> Path:
    payload = safe_torch_load(path)
    edit(payload)
    atomic_torch_save(payload, path)
    return path


def _read_only(monkeypatch, *folders: Path) -> None:
    """Make folders read-only; as root (where permission bits do not bind) the check sees them as read-only."""
    for folder in folders:
        folder.chmod(0o555)
    if os.geteuid() == 0:
        real = os.access
        locked = {str(f.resolve()) for f in folders}
        monkeypatch.setattr("landscape.io.os.access",
                            lambda p, mode: (False if (mode & os.W_OK and str(Path(p).resolve()) in locked)
                                             else real(p, mode)))


# -- stale epoch files ---------------------------------------------------------------------------

@pytest.mark.slow
def test_unfinished_run_is_never_discarded_silently_and_pca_uses_only_this_run(tmp_path):
    cfg = _cfg(tmp_path, epochs=2, run_name="r")
    first = train(cfg, progress=False)
    (first.run_dir / "final.pt").unlink()  # an unfinished run
    (first.run_dir / "analysis").mkdir()
    (first.run_dir / "analysis" / "old.json").write_text("{}")
    with pytest.raises(LandscapeError, match="unfinished run.*--resume.*--overwrite"):
        train(cfg.replace(epochs=1), progress=False)
    assert (first.run_dir / "epoch_002.pt").exists()  # nothing was touched
    second = train(cfg.replace(epochs=1), progress=False, overwrite=True)
    names = {p.name for p in second.run_dir.iterdir()}
    assert names == {"epoch_000.pt", "epoch_001.pt", "final.pt", "best.pt", "history.json", "config.json"}
    run_id = json.loads((second.run_dir / "config.json").read_text())["run_id"]
    ids = {safe_torch_load(p).get("run_id") for p in second.run_dir.glob("*.pt")}
    assert ids == {run_id} and len(run_id) == 16

    # an epoch file of another run in the folder is not part of this run's trajectory
    from landscape import load_checkpoint
    from landscape.analysis.direction_plan import _epoch_paths

    stray = second.run_dir / "epoch_002.pt"  # as if left by another run
    shutil.copy(second.run_dir / "epoch_001.pt", stray)
    _edit_checkpoint(stray, lambda p: p.update(run_id="someotherrun0000"))
    ck = load_checkpoint(second.run_dir, device="cpu")
    assert [p.name for p in _epoch_paths(ck)] == ["epoch_000.pt", "epoch_001.pt"]


# -- locks --------------------------------------------------------------------------------------

def test_lock_is_exclusive_names_its_holder_and_stale_locks_are_taken_over(tmp_path):
    run = tmp_path / "run"
    with run_lock(run):
        info = json.loads((run / LOCK_NAME).read_text())
        assert info["pid"] == os.getpid() and info["host"]
        with run_lock(run):  # re-entrant within one process
            pass
        assert (run / LOCK_NAME).exists()
    assert not (run / LOCK_NAME).exists()

    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run / LOCK_NAME).write_text(json.dumps({"pid": live.pid, "host": __import__("socket").gethostname()}))
        with pytest.raises(LandscapeError, match=f"in use by process {live.pid}"):
            with run_lock(run):
                pass
    finally:
        live.kill()
        live.wait()
    # the holder is gone now: its lock is stale and is taken over with a warning
    with pytest.warns(StaleLockWarning, match=f"process {live.pid}"):
        with run_lock(run):
            assert json.loads((run / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (run / LOCK_NAME).exists()
    # another host's lock cannot be judged: a clean error
    (run / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "x"}))
    with pytest.raises(LandscapeError, match="on elsewhere"):
        with run_lock(run):
            pass


_HOLD = """
import sys, time
from landscape.runlock import run_lock
with run_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_fault_injection_a_writer_holding_the_lock_then_killed(cli, tiny_run, tmp_path):
    """A second writer (training, then an analysis) is refused while a process holds the run folder;
    after that process is SIGKILLed, its stale lock is taken over and the work succeeds."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("analysis"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(run)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "locked"
        res = cli("train", "--model", "cnn-tiny", "--img-size", "16", "--epochs", "1", "--out", tmp_path,
                  "--run-name", "run", "--overwrite")
        assert f"in use by process {holder.pid}" in _one_error(res)
        res = cli("sharpness", run, "--rho", "0.01", "--m", "16", "--samples", "16", "--steps", "1")
        assert f"in use by process {holder.pid}" in _one_error(res)
        assert (run / "final.pt").exists() and not (run / "analysis").exists()
    finally:
        holder.kill()
        holder.wait()
    res = cli("sharpness", run, "--rho", "0.01", "--m", "16", "--samples", "16", "--steps", "1")
    assert res.code == 0, res.err
    assert f"warning: took over the stale lock of {run}, left by process {holder.pid}" in res.err  # one line
    assert not (run / LOCK_NAME).exists() and len(list((run / "analysis").glob("sharpness-*.json"))) == 1


@pytest.mark.slow
def test_fault_injection_two_concurrent_trainers_on_one_run_folder(tmp_path):
    """Two `train --run-name same` processes with different seeds: one wins, the other exits 2,
    and every file on disk belongs to the winner."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", "import sys; from landscape.cli import main; sys.exit(main())",
                               "train", "--model", "cnn-tiny", "--img-size", "16", "--epochs", "2", "--out",
                               str(tmp_path), "--run-name", "same", "--seed", str(seed)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for seed in (0, 1)]
    outs = [p.communicate(timeout=120) for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 2], (codes, outs)
    winner = codes.index(0)
    loser_err = outs[1 - winner][1].strip().splitlines()
    assert len(loser_err) == 1 and loser_err[0].startswith("error: ")
    assert "in use by process" in loser_err[0] or "already holds a finished run" in loser_err[0]
    run = tmp_path / "same"
    config = json.loads((run / "config.json").read_text())
    assert config["seed"] == winner
    for p in run.glob("*.pt"):
        payload = safe_torch_load(p)
        assert payload["seed"] == winner and payload["run_id"] == config["run_id"], p.name
    assert not (run / LOCK_NAME).exists()


# -- run names ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../../escape", "a/b", "..", ".", "a b", "/abs", "x\\y", ""])
def test_run_name_is_one_safe_path_component(cli, tmp_path, name):
    before = _tree(tmp_path)
    msg = _one_error(cli("train", "--model", "cnn-tiny", "--img-size", "16", "--epochs", "1", "--out",
                         tmp_path / "runs", "--run-name", name))
    assert "--run-name" in msg if name else True
    assert _tree(tmp_path) == before


# -- writability before work ------------------------------------------------------------------------

def test_outputs_are_checked_before_any_computation(cli, run_copy, tmp_path, monkeypatch):
    import importlib

    hessian, surface = (importlib.import_module(f"landscape.analysis.{m}") for m in ("hessian", "surface"))

    def boom(*a, **k):
        raise AssertionError("computation started")

    monkeypatch.setattr(hessian, "_compute", boom)
    monkeypatch.setattr(surface, "evaluate_surface", boom)
    locked = tmp_path / "ro"
    locked.mkdir()
    afile = tmp_path / "afile"
    afile.write_text("x")
    _read_only(monkeypatch, locked)
    cases = [
        ("hessian", run_copy, "--json", locked / "h.json"),      # read-only folder
        ("hessian", run_copy, "--plot", afile / "d.png"),        # parent is a file
        ("hessian", run_copy, "--json", tmp_path),               # a folder where a file goes
        ("surface", run_copy, "--out", afile),                   # a file where a folder goes
        ("surface", run_copy, "--out", locked / "sub"),          # missing parent under a read-only folder
        ("sharpness", run_copy, "--json", locked / "s.json"),
        ("train", "--out", afile, "--epochs", "1"),
        ("train", "--json", afile / "m.json", "--epochs", "1"),
        ("report", run_copy, "-o", locked / "r.html"),
        ("report", run_copy, "--png", afile),
        ("study", "--out", locked, "--quick"),
        ("data", "inspect", "--json", locked / "i.json"),
    ]
    for args in cases:
        msg = _one_error(cli(*args))
        assert "cannot write" in msg or "is a file" in msg or "is a folder" in msg, (args, msg)
    # the run folder itself read-only: the analysis is refused before it starts
    _read_only(monkeypatch, locked, run_copy)
    msg = _one_error(cli("hessian", run_copy))
    assert "read-only" in msg or "cannot" in msg
    monkeypatch.undo()
    locked.chmod(0o755)
    run_copy.chmod(0o755)


# -- non-finite weights and buffers -----------------------------------------------------------------

def test_training_stops_on_nonfinite_buffers_and_analyzers_refuse_them(cli, tmp_path, monkeypatch, run_copy):
    from landscape.train import loop

    real = loop._Trainer.train_epoch

    def diverge_in_epoch_2(self, epoch, *args):
        loss = real(self, epoch, *args)
        if epoch == 2:  # what `--optimizer sgd --lr 50` did: finite loss, inf BatchNorm statistics
            bn = next(m for m in self.model.modules() if isinstance(m, torch.nn.BatchNorm2d))
            bn.running_var.fill_(math.inf)
        return loss

    monkeypatch.setattr(loop._Trainer, "train_epoch", diverge_in_epoch_2)
    with pytest.raises(LandscapeError, match=r"non-finite weights or buffers \(.*running_var.*epoch 2.*epoch_001\.pt"):
        train(_cfg(tmp_path, epochs=3, run_name="d"), progress=False)
    run = tmp_path / "runs" / "d"
    assert sorted(p.name for p in run.glob("*.pt")) == ["best.pt", "epoch_000.pt", "epoch_001.pt"]
    assert not (run / LOCK_NAME).exists()

    _edit_checkpoint(run_copy / "final.pt",
                     lambda p: p["state_dict"][next(k for k in p["state_dict"] if k.endswith("running_var"))]
                     .fill_(math.inf))
    for cmd in (["hessian"], ["sharpness"], ["surface", "--dim", "1", "--grid", "3"]):
        msg = _one_error(cli(cmd[0], run_copy, *cmd[1:]))
        assert "non-finite weights or buffers" in msg and "running_var" in msg
    assert not (run_copy / "analysis").exists()

    # surface points whose loss is NaN have NaN accuracy
    from landscape.surface.evaluate import evaluate_point

    class Broken(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor([[math.nan, 0.0], [0.0, 1.0]]))

        def forward(self, x):
            return x @ self.w

    x, y = torch.eye(2), torch.tensor([1, 1])
    loss, acc = evaluate_point(Broken(), torch.nn.CrossEntropyLoss(), [(x, y)])
    assert math.isnan(loss) and math.isnan(acc)


# -- zero direction ---------------------------------------------------------------------------------

def test_interpolating_to_the_same_checkpoint_is_an_error(cli, run_copy):
    msg = _one_error(cli("surface", run_copy, "--directions", f"interp:{run_copy / 'final.pt'}", "--dim", "1",
                         "--grid", "5"))
    assert "is zero" in msg
    assert not list(run_copy.glob("analysis/surface-*"))


# -- report and study adapt m-sharpness to small data -------------------------------------------------

@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A 1-epoch cnn-tiny run on a 24-image folder (fewer training images than the default m=128)."""
    root = tmp_path_factory.mktemp("small")
    rng = np.random.default_rng(0)
    for c, cls in enumerate(("benign", "malignant")):
        (root / "data" / cls).mkdir(parents=True)
        for i in range(12):
            img = rng.integers(0, 256, (20, 20), dtype=np.uint8) // (c + 1)
            Image.fromarray(img).save(root / "data" / cls / f"{cls} ({i}).png")
    cfg = TrainConfig(data=str(root / "data"), out=str(root / "runs"), epochs=1, **{**TINY, "batch_size": 4})
    return train(cfg, progress=False).run_dir


def test_report_sharpness_m_adapts_to_small_data_and_every_setting_can_be_given(cli, small_run, tmp_path):
    from landscape import load_checkpoint
    from landscape.report.collect import run_analysis

    ck = load_checkpoint(small_run, device="cpu")
    n_train = len(ck.tensors("train")[1])
    assert n_train < 128
    record = run_analysis(ck, "sharpness", overrides={"rhos": (0.01,), "steps": 1}, progress=False)
    assert record["settings"]["m"] == n_train and record["result"]["m"] == n_train
    record = run_analysis(ck, "sharpness", overrides={"rhos": (0.01,), "steps": 1, "samples": 8}, progress=False, m=4)
    assert record["settings"]["m"] == 4 and record["result"]["n_batches"] == 2
    # an explicit m larger than the data is the user's error, named by its flag
    with pytest.raises(LandscapeError, match="use a smaller m") as err:
        run_analysis(ck, "sharpness", overrides={"rhos": (0.01,)}, progress=False, m=n_train + 1)
    assert "m" in err.value.params  # the CLI shows it as --m
    for cmd in ("report", "study"):
        help_text = cli(cmd, "--help").out
        assert "--m" in help_text and "--set" in help_text
    assert "has no setting 'nope'" in _one_error(cli("report", small_run, "--set", "hessian.nope=1", "-o",
                                                     tmp_path / "r.html"))
    assert "has no setting 'rho'" in _one_error(cli("study", "--set", "sharpness.rho=3", "--out", tmp_path / "s"))


# -- a study validates everything before its first run --------------------------------------------------

def test_study_rejects_a_model_typo_before_training_anything(cli, tmp_path):
    t0 = time.perf_counter()
    msg = _one_error(cli("study", "--models", "cnn-tiny,resnet9000", "--optimizers", "adam", "--seeds", "1",
                         "--epochs", "1", "--img-size", "16", "--out", tmp_path / "study"))
    assert "resnet9000" in msg and not (tmp_path / "study").exists()
    assert time.perf_counter() - t0 < 60
    # analysis settings too: their values are checked by the analyzers' own checks, before any run
    msg = _one_error(cli("study", "--models", "cnn-tiny", "--quick", "--set", "hessian.top_k=0", "--out",
                         tmp_path / "study"))
    assert "--set hessian: top_k must be an integer >= 1" in msg and not (tmp_path / "study").exists()


# -- damaged checkpoints and impossible sizes: clean errors, exit 2 ----------------------------------------

@pytest.mark.parametrize("edit, message", [
    (lambda p: p.pop("data"), "is damaged: data is missing"),
    (lambda p: p.update(data=[1, 2]), "is damaged: data is list, not a dict"),
    (lambda p: p["data"].pop("split"), "is damaged: data.split is missing"),
    # issue 22: every field by type and range, before any work
    (lambda p: p.pop("optimizer"), "is damaged: optimizer is missing"),
    (lambda p: p.pop("seed"), "is damaged: seed is missing"),
    (lambda p: p.update(seed=1.5), "is damaged: seed is float, not int"),
    (lambda p: p.update(seed=-3), "is damaged: seed is -3, not an integer from 0"),
    (lambda p: p["data"].update(mean="0.5"), "is damaged: data.mean is str, not float"),
    (lambda p: p["data"].update(std=0.0), "is damaged: data.std is 0.0, not finite and > 0"),
    (lambda p: p["data"].update(classes="benign"), "is damaged: data.classes is str, not a list"),
    (lambda p: p.update(metrics=[1]), "is damaged: metrics is list, not a dict"),
    (lambda p: p["model"]["kwargs"].update(channels=10**7), "needs"),
    (lambda p: p["model"]["kwargs"].update(num_classes=10**12), "num_classes must be an integer from 1 to 100000"),
    (lambda p: p.update(format_version=-1), "format_version -1"),
    (lambda p: p.update(format_version=True), "format_version True"),
])
def test_damaged_checkpoints_are_clean_errors(cli, run_copy, edit, message):
    _edit_checkpoint(run_copy / "final.pt", edit)
    for cmd in ("hessian", "surface", "sharpness"):
        assert message in _one_error(cli(cmd, run_copy))


def test_huge_grids_and_bad_seeds_are_refused_before_work(cli, run_copy):
    msg = _one_error(cli("surface", run_copy, "--grid", "100000x100000"))
    assert "GiB" in msg and "smaller --grid" in msg
    for seed in ("-1", "1e23", str(2**64), str(2**32)):
        for cmd in (["hessian", run_copy], ["sharpness", run_copy], ["surface", run_copy], ["report", run_copy],
                    ["train"], ["study"], ["data", "inspect"]):
            msg = _one_error(cli(*cmd, "--seed", seed))
            assert "--seed" in msg, (cmd, seed, msg)


# -- assorted clear errors --------------------------------------------------------------------------------------

def test_weight_mismatch_nan_weights_float_tiffs_resume_lr_and_data_errors_are_clear(cli, run_copy, small_run,
                                                                                    tmp_path):
    from landscape.data.imageops import to_grey
    from landscape.sharpness import worst_case_sharpness

    # the whole weight-mismatch message, not just its heading
    _edit_checkpoint(run_copy / "final.pt", lambda p: p["state_dict"].pop("head.weight"))
    msg = _one_error(cli("hessian", run_copy))
    assert 'Missing key(s) in state_dict: "head.weight"' in msg

    # NaN weights: the sharpness error does not suggest a smaller rho
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with torch.no_grad():
        model[0].weight.fill_(math.nan)
    with pytest.raises(LandscapeError, match="own weights") as err:
        worst_case_sharpness(model, torch.nn.CrossEntropyLoss(), [(torch.eye(2), torch.tensor([0, 1]))], [0.1],
                             progress=False)
    assert "rho" not in str(err.value)

    # float TIFFs keep their brightness
    ramp = np.linspace(0.0, 1.0, 32 * 32, dtype=np.float32).reshape(32, 32)
    Image.fromarray(ramp, mode="F").save(tmp_path / "f.tif")
    grey = np.asarray(to_grey(Image.open(tmp_path / "f.tif")))
    assert grey.min() == 0 and grey.max() == 255 and abs(grey.mean() - 127.5) < 1
    wide = (ramp * 4000 - 1000).astype(np.float32)
    assert np.asarray(to_grey(Image.fromarray(wide, mode="F"))).max() == 255

    # an explicit --lr equal to the default is the same setting on --resume
    cfg = _cfg(tmp_path, epochs=1, run_name="lr")
    first = train(cfg, progress=False)
    again = train(cfg.replace(lr=1e-3), progress=False, resume=True)
    assert again.final == first.final
    with pytest.raises(LandscapeError, match=r"other settings \(lr\)"):
        train(cfg.replace(lr=2e-3), progress=False, resume=True)

    # --data on a phantom checkpoint is an error, not ignored
    assert "trained on the built-in phantom" in _one_error(cli("sharpness", run_copy, "--data", tmp_path))

    # a moved data folder: the message names --data, not data_root
    msg = _one_error(cli("sharpness", small_run, "--data", tmp_path / "moved"))
    assert "not found; pass --data" in msg and "data_root" not in msg


# -- property: every command, bad values for each option: exit 2, one error line, nothing written -----------------

def _bad_values(run: Path, afile: Path, folder: Path) -> list[tuple[str, ...]]:
    train = ("train", "--model", "cnn-tiny", "--img-size", "16", "--epochs", "1", "--out", "runs")
    study = ("study", "--models", "cnn-tiny", "--optimizers", "adam", "--seeds", "1", "--epochs", "1",
             "--img-size", "16", "--out", "study")
    seeds = ["-1", "1e23", str(2**64), "x"]
    table = {
        train: {"--epochs": ["0", "-3", "x"], "--batch-size": ["1"], "--img-size": ["4", "100000"],
                "--lr": ["-1", "0", "x", "inf", "nan"],
                "--seed": seeds, "--split-seed": seeds, "--run-name": ["../x", "a/b", ".."], "--out": [str(afile)],
                "--json": [str(afile / "m.json"), str(folder)], "--optimizer": ["bogus", ""], "--base": ["bogus"],
                "--schedule": ["bogus"], "--keep": ["bogus"], "--device": ["bogus", "tpu"], "--model": ["resnet9000"],
                "--kfold": ["1"], "--weight-decay": ["-1", "inf"], "--opt-arg": ["novalue"], "--rho": ["-1", "inf"],
                "--data": [str(afile)]},
        ("hessian", str(run)): {"--top-k": ["0", "x", "1000000000"],
                                "--budget-memory": ["0", "nan", "inf", "-1", "0.000001"], "--split": ["bogus"],
                                "--samples": ["0"], "--batch-size": ["0"],
                                "--tol": ["0", "2"], "--seed": seeds, "--device": ["bogus"], "--data": [str(folder)],
                                "--json": [str(folder), str(afile / "h.json")], "--plot": [str(folder)]},
        ("sharpness", str(run)): {"--rho": ["x", "-1", "", "inf"], "--m": ["0"], "--kind": ["bogus"],
                                  "--budget-memory": ["0", "nan", "0.000001"],
                                  "--norm": ["bogus"],
                                  "--samples": ["0"], "--seed": seeds, "--device": ["bogus"], "--data": [str(folder)],
                                  "--json": [str(folder)]},
        ("surface", str(run)): {"--dim": ["3"], "--directions": ["bogus", "interp:", "interp:missing.pt"],
                                "--grid": ["1", "axb", "100000x100000", "3x3x3"],
                                "--budget-memory": ["-1", "inf", "0.000001"],
                                "--span": ["0", "-1", "nan", "inf", "1e308"],
                                "--split": ["bogus"], "--bn": ["bogus"], "--samples": ["0"], "--bn-samples": ["0"],
                                "--seed": seeds, "--batch-size": ["0"], "--out": [str(afile)], "--device": ["bogus"],
                                "--data": [str(folder)]},
        ("report", str(run)): {"--output": ["r.txt", str(afile / "r.html")], "--png": [str(afile)], "--seed": seeds,
                               "--m": ["0"], "--set": ["bogus", "nope.k=1", "hessian.nokey=1"]},
        study: {"--models": ["resnet9000", ",", "cnn-tiny,cnn-tiny"], "--optimizers": ["bogus", "adam,adam"],
                "--seeds": ["0"], "--epochs": ["0"],
                "--img-size": ["4"], "--out": [str(afile)], "--seed": seeds, "--batch-size": ["1"],
                "--m": ["0"], "--set": ["bogus"]},
        ("data", "inspect"): {"--img-size": ["4"], "--seed": seeds, "--json": [str(folder), str(afile / "i.json")]},
        ("measures", str(run)): {"--samples": ["0"], "--measures": ["bogus"], "--json": [str(afile / "m.json")],
                                 "--budget-memory": ["0", "0.000001"]},
        ("evaluate", str(run)): {"--data": [str(afile), str(folder / "nope")]},
        ("evaluate", str(run), "--data", str(folder)): {"--n-boot": ["0", "-1"]},
        ("sharpness", str(run), "--kind", "average"): {"--draws": ["0"]},
        ("correlate", str(run)): {"--json": [str(afile / "c.json")], "--min-domain-size": ["0"]},
        ("compare", str(run)): {"--json": [str(afile / "c.json")], "--seed": seeds, "--n-boot": ["5"],
                                "--baseline": ["lion", ""]},
    }
    cases = [(*base, option, value) for base, options in table.items() for option, values in options.items()
             for value in values]
    cases += [("hessian", "missing.pt"), ("report", "missing"), ("data", "inspect", "missing")]
    return cases


def test_property_every_bad_option_value_exits_2_with_one_error_line_and_writes_nothing(cli, run_copy, tmp_path,
                                                                                      monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    afile, folder = work / "afile", work / "folder"
    afile.write_text("x")
    folder.mkdir()
    monkeypatch.chdir(work)
    before = {"work": _tree(work), "run": _tree(run_copy)}
    start = time.perf_counter()
    cases = _bad_values(run_copy, afile, folder)
    assert len(cases) > 100
    for args in cases:
        res = cli(*args)
        try:
            _one_error(res)
        except AssertionError as exc:
            raise AssertionError(f"landscape {' '.join(args)}: {exc}") from None
        assert {"work": _tree(work), "run": _tree(run_copy)} == before, f"landscape {' '.join(args)} wrote files"
    assert time.perf_counter() - start < 60
