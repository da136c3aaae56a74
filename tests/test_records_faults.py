"""Issue 22: records that cannot lie, faults that leave nothing stuck, limits checked before work.

Each test reproduces one failure of the issue (it failed before the fix).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from landscape.checkpoint.cache import EDITED, MALFORMED, OTHER_CHECKPOINT, RecordWarning, digest
from landscape.errors import LandscapeError
from landscape.io import atomic_torch_save, safe_torch_load
from landscape.runlock import LOCK_NAME

ROOT = Path(__file__).resolve().parents[1]
HESSIAN = ("--top-k", "1", "--samples", "8", "--no-trace", "--batch-size", "8")


def _one_error(res, after_plan: bool = False) -> str:
    """Exit 2 and one ``error:`` line on stderr (``after_plan``: the last, after the plan's lines); returns it."""
    lines = [line for line in res.err.splitlines() if line.strip()]
    assert res.code == 2, (res.code, res.out, res.err)
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0] and (after_plan or len(lines) == 1), res.err
    assert "internal error" not in errors[0]
    return errors[0]


@pytest.fixture
def two_runs(tiny_runs, tmp_path) -> tuple[Path, Path]:
    """Private copies of the two shared report runs (adam, sam), without records."""
    out = []
    for src, name in zip(tiny_runs, ("a", "b")):
        shutil.copytree(src, tmp_path / name, ignore=shutil.ignore_patterns("analysis"))
        out.append(tmp_path / name)
    return out[0], out[1]


def _record(run: Path) -> Path:
    (path,) = (run / "analysis").glob("hessian-*.json")
    return path


def _lambda(cli, run: Path) -> tuple[float, str]:
    """lambda_1 from ``landscape hessian RUN`` (exit 0) and its stderr."""
    res = cli("hessian", run, *HESSIAN)
    assert res.code == 0, res.err
    return json.loads(_record(run).read_text())["result"]["top_k"]["eigenvalues"][0], res.err


# -- 1. records bound to what they describe -------------------------------------------------------------------

def test_tampered_records_are_recomputed_with_one_warning_naming_why(cli, two_runs):
    a, b = two_runs
    own, err = _lambda(cli, a)
    other, _ = _lambda(cli, b)
    assert own != other and "warning" not in err
    again, err = _lambda(cli, a)  # a sound record is a cache hit: no warning, no plan, the same number
    assert again == own and "warning" not in err and "plan" not in err
    record = _record(a)
    stored = json.loads(record.read_text())
    assert stored["digest"] == digest(stored) and len(stored["digest"]) == 64
    assert stored["provenance"]["split_hash"] and len(stored["provenance"]["checkpoint_sha256"]) == 64

    # run B's record put under run A's name: A's own number, not B's
    shutil.copy(_record(b), record)
    value, err = _lambda(cli, a)
    assert value == pytest.approx(own, rel=1e-6) and f"{OTHER_CHECKPOINT}; recomputing" in err
    assert len([line for line in err.splitlines() if line.startswith("warning:")]) == 1

    # an edited number
    stored = json.loads(record.read_text())
    stored["result"]["top_k"]["eigenvalues"][0] = 987654.321
    record.write_text(json.dumps(stored))
    value, err = _lambda(cli, a)
    assert value == pytest.approx(own, rel=1e-6) and f"{EDITED}; recomputing" in err

    # a list, a record without top_k, a record that is not JSON: recomputed, exit 0
    for text, why in (("[1, 2]", "the top level is list"), (None, "result.top_k is missing"), ("{not json", "")):
        if text is None:
            stored = json.loads(record.read_text())
            del stored["result"]["top_k"]
            stored["digest"] = digest(stored)  # even with a matching digest: the schema refuses it
            text = json.dumps(stored)
        record.write_text(text)
        value, err = _lambda(cli, a)
        assert value == pytest.approx(own, rel=1e-6) and MALFORMED in err and why in err, err


def test_report_never_shows_a_number_of_a_record_that_fails_its_checks(cli, two_runs, tmp_path):
    from landscape.report.build import build_report

    a, _ = two_runs
    own, _ = _lambda(cli, a)
    record = _record(a)
    stored = json.loads(record.read_text())
    stored["result"]["top_k"]["eigenvalues"][0] = 987654.321
    record.write_text(json.dumps(stored))
    with pytest.warns(RecordWarning, match=EDITED):
        out = build_report([a], tmp_path / "r.html", compute=False, progress=False)
    numbers = json.loads(out.with_suffix(".json").read_text())
    assert numbers["rows"][0]["lambda_max"] is None
    assert "lambda_max" in {m["quantity"] for m in numbers["missing"]}
    assert "987654" not in out.read_text(encoding="utf-8")
    # malformed records: the report does not fail with an internal error either
    record.write_text("[1, 2]")
    res = cli("report", a, "-o", tmp_path / "r2.html", "--no-compute")
    assert res.code == 0, res.err
    assert MALFORMED in res.err and "internal error" not in res.err
    # the sound record is used again once it is back
    stored["result"]["top_k"]["eigenvalues"][0] = own
    record.write_text(json.dumps(stored))
    out = build_report([a], tmp_path / "r3.html", compute=False, progress=False)
    assert json.loads(out.with_suffix(".json").read_text())["rows"][0]["lambda_max"] == pytest.approx(own)


def test_a_symlinked_analysis_folder_is_refused_naming_the_link(cli, two_runs, tmp_path):
    a, _ = two_runs
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (a / "analysis").symlink_to(elsewhere, target_is_directory=True)
    msg = _one_error(cli("hessian", a, *HESSIAN))
    assert f"{a / 'analysis'} is a link to {elsewhere}" in msg and "outside the run folder" in msg
    assert not list(elsewhere.iterdir()) and not (a / LOCK_NAME).exists()


# -- 2. faults leave nothing stuck ----------------------------------------------------------------------------

def _enospc_at(monkeypatch, which: int) -> list[int]:
    """Make the write of the ``which``-th file opened by ``os.fdopen`` (0-based: the lock, then every file of
    ``landscape.io``) raise ENOSPC; returns the log of calls."""
    real = os.fdopen
    calls = []

    class Full:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.fh, name)

    def fdopen(fd, *args, **kwargs):
        fh = real(fd, *args, **kwargs)
        calls.append(fd)
        return Full(fh) if len(calls) - 1 == which else fh

    monkeypatch.setattr(os, "fdopen", fdopen)
    return calls


@pytest.mark.parametrize("which", ["first", "middle", "last"])
def test_disk_full_during_train_is_one_error_line_no_partial_file_and_no_lock(cli, tmp_path, monkeypatch, which):
    # the lock, then every file of the run (epoch files, best, final, history, config)
    args = ("train", "--model", "cnn-tiny", "--img-size", "16", "--epochs", "1", "--out", tmp_path,
            "--run-name", "r")
    probe = _enospc_at(monkeypatch, 10**9)  # count the writes of a clean run
    assert cli(*args).code == 0
    n = len(probe)
    assert n >= 5
    shutil.rmtree(tmp_path / "r")
    monkeypatch.undo()
    _enospc_at(monkeypatch, {"first": 0, "middle": n // 2, "last": n - 1}[which])
    msg = _one_error(cli(*args))
    assert "no space left on the device" in msg and str(tmp_path / "r") in msg and "nothing was written" in msg
    run = tmp_path / "r"
    assert not (run / LOCK_NAME).exists()
    assert not [p for p in run.rglob("*") if p.name.endswith(".tmp")]  # no partial file
    monkeypatch.undo()
    resume = ("--resume",) if list(run.glob("epoch_*.pt")) else ()
    res = cli(*args, *resume)  # nothing stuck: the same command (resumed) finishes the run
    assert res.code == 0, res.err
    assert (run / "final.pt").exists() and not (run / LOCK_NAME).exists()


def test_disk_full_writing_a_record_or_the_lock_leaves_no_lock(cli, two_runs, monkeypatch):
    a, _ = two_runs
    _enospc_at(monkeypatch, 1)  # the record (0 is the lock)
    msg = _one_error(cli("hessian", a, *HESSIAN), after_plan=True)
    assert "no space left on the device; it needs" in msg and "MiB" in msg and "hessian-" in msg
    assert not (a / LOCK_NAME).exists() and not list((a / "analysis").glob("*.tmp"))
    monkeypatch.undo()
    _enospc_at(monkeypatch, 0)  # the lock file's JSON does not fit either
    msg = _one_error(cli("hessian", a, *HESSIAN))
    assert f"cannot write {a / LOCK_NAME}: no space left" in msg
    assert not (a / LOCK_NAME).exists()  # the next command is not told the folder "is in use"
    monkeypatch.undo()
    assert cli("hessian", a, *HESSIAN).code == 0


def test_read_only_file_system_is_one_error_line():
    from landscape.io import disk_error

    for code, words in ((errno.EROFS, "read-only file system"), (errno.EDQUOT, "disk quota exceeded")):
        err = disk_error(OSError(code, os.strerror(code)), "/x/y.json", 2**20)
        assert str(err).startswith(f"cannot write /x/y.json: {words}") and "MiB" not in str(err)


_INTERRUPT = """
import os, signal, sys, threading
from landscape.cli import main
import landscape.train.loop as loop
real = loop._Trainer.train_epoch
def slow(self, epoch, *a):
    out = real(self, epoch, *a)
    if epoch == 1:
        print("epoch 1 done", flush=True)
        import time; time.sleep(60)
    return out
loop._Trainer.train_epoch = slow
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sigint_and_sigterm_print_one_line_exit_130_release_the_lock_and_resume(tmp_path, sig):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    args = ["train", "--model", "cnn-tiny", "--img-size", "16", "--epochs", "2", "--out", str(tmp_path),
            "--run-name", "r"]
    proc = subprocess.Popen([sys.executable, "-c", _INTERRUPT, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        for line in proc.stdout:
            if "epoch 1 done" in line:
                break
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 130, err
    assert lines[-1] == f"error: interrupted (resume with landscape {' '.join(args)} --resume)", err
    run = tmp_path / "r"
    assert not (run / LOCK_NAME).exists() and (run / "epoch_000.pt").exists()  # interrupted within epoch 1
    if sig == signal.SIGTERM:
        return  # resuming is the same after either signal: once is enough
    res = subprocess.run([sys.executable, "-c", "import sys; from landscape.cli import main; "
                          "sys.exit(main(sys.argv[1:]))", *args, "--resume"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert (run / "final.pt").exists()


def test_typer_does_not_swallow_the_interrupt(cli, monkeypatch):
    """In-process: the handler turns SIGINT into one line and code 130 (typer made it a silent Exit(130))."""
    import landscape.analysis.hessian as hessian

    def interrupted(*a, **k):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
        raise AssertionError("not interrupted")

    monkeypatch.setattr(hessian, "analyze", interrupted)
    before = signal.getsignal(signal.SIGINT)
    res = cli("hessian", "somewhere")
    assert res.code == 130 and res.err.strip() == "error: interrupted (resume with landscape hessian somewhere)"
    assert signal.getsignal(signal.SIGINT) is before  # restored
    assert threading.current_thread() is threading.main_thread()


# -- 4. checkpoint metadata and model size --------------------------------------------------------------------

def test_absurd_model_width_is_refused_before_allocation(cli, two_runs):
    a, _ = two_runs
    payload = safe_torch_load(a / "final.pt")
    payload["model"]["kwargs"]["channels"] = 10**7  # ~3.6 PB of weights
    atomic_torch_save(payload, a / "final.pt")
    t0 = time.perf_counter()
    msg = _one_error(cli("hessian", a))
    assert "the model of" in msg and "needs" in msg and "available" in msg
    assert time.perf_counter() - t0 < 30


# -- 5. limits and values before work -------------------------------------------------------------------------

def test_every_analysis_is_sized_against_budget_memory_before_work(cli, two_runs):
    """surface, sharpness and measures state their peak memory and refuse a budget it exceeds, writing nothing."""
    from landscape.analysis.measures import peak_copies
    from landscape.analysis.memory import check_analysis_memory, parameter_bytes
    from landscape.measures.curvature import GGN_CHUNK

    a, _ = two_runs
    for command, what in ((("surface", a, "--dim", "1", "--grid", "5"), "surface of"),
                          (("sharpness", a), "m-sharpness of"), (("measures", a), "measures of")):
        res = cli(*command, "--budget-memory", "0.000001")
        msg = _one_error(res)
        assert what in msg and "of --budget-memory" in msg, msg
        assert "plan" not in res.out and not (a / "analysis").exists()
    model = torch.nn.Linear(100, 10)  # 1010 float32 parameters: 4040 bytes a copy
    assert parameter_bytes(model) == 4040
    assert peak_copies(["norms"], 3) == 4 and peak_copies(["ggn", "norms"], 3) == 4 + 2 * GGN_CHUNK * 3
    need = 3 * 4040 + 100
    assert check_analysis_memory(model, 3, "x", budget_memory=need / 2**30, extra=100) == need
    with pytest.raises(LandscapeError, match=r"x needs 0\.0117 MiB, more than"):
        check_analysis_memory(model, 3, "x", budget_memory=(need - 1) / 2**30, extra=100)


def test_lanczos_basis_is_sized_before_the_plan(cli, two_runs):
    a, _ = two_runs
    res = cli("hessian", a, "--top-k", "1000000000")
    assert "at most the number of parameters" in _one_error(res) and "plan" not in res.out + res.err
    res = cli("hessian", a, "--top-k", "20", "--budget-memory", "0.00001")
    msg = _one_error(res)
    assert "Lanczos basis of --top-k=20" in msg and "more than the 0.0102 MiB of --budget-memory" in msg
    assert "plan" not in res.out and not (a / "analysis").exists()
    from landscape.analysis.hessian import _check_basis

    model = torch.nn.Linear(100, 10)  # 1010 parameters; 2 eigenvalues: min(40 + 40, 1010) = 80 vectors
    with pytest.raises(LandscapeError, match=r"80 vectors of 1,010 parameters\) needs 0\.308 MiB"):
        _check_basis(model, 2, 80, budget_memory=80 * 1010 * 4 / 2**30 * 0.99)
    _check_basis(model, 2, 80, budget_memory=80 * 1010 * 4 / 2**30)  # exactly fits


def test_surface_span_that_overflows_is_refused_and_bn_recompute_folds_a_batch_of_one(cli, two_runs):
    a, _ = two_runs
    res = cli("surface", a, "--span", "1e308", "--dim", "1", "--grid", "3", "--samples", "8")
    assert "--span overflows" in _one_error(res) and "plan" not in res.err
    assert not list((a / "analysis").glob("surface-*.json")) if (a / "analysis").exists() else True

    from landscape.surface.evaluate import fold_singletons, recompute_bn

    x, y = torch.randn(5, 3), torch.arange(5)
    folded = fold_singletons([(x[:2], y[:2]), (x[2:4], y[2:4]), (x[4:], y[4:])])
    assert [len(b[1]) for b in folded] == [2, 3] and torch.equal(folded[1][0], x[2:])
    with pytest.raises(LandscapeError, match="bn_samples must be >= 2"):
        fold_singletons([(x[:1], y[:1])])
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3))
    recompute_bn(model, folded)  # a batch of one in train mode raised "Expected more than 1 value per channel"
    bn = model[1]
    with torch.no_grad():
        h = model[0](x)
    # cumulative average of the two batches' statistics
    want = (h[:2].mean(0) + h[2:].mean(0)) / 2
    assert torch.allclose(bn.running_mean, want, atol=1e-6)
    res = cli("surface", a, "--dim", "1", "--grid", "3", "--samples", "8", "--bn", "recompute", "--bn-samples", "9",
              "--batch-size", "8")
    assert res.code == 0, res.err


def test_float_options_refuse_nan_and_inf_and_counts_of_zero(cli, two_runs, tmp_path):
    a, _ = two_runs
    train = ("train", "--model", "cnn-tiny", "--img-size", "16", "--epochs", "1", "--out", tmp_path / "runs")
    for args, flag in (((*train, "--lr", "inf"), "--lr"), ((*train, "--optimizer", "sam", "--rho", "inf"), "--rho"),
                       ((*train, "--weight-decay", "nan"), "--weight-decay"),
                       (("sharpness", a, "--kind", "average", "--draws", "0"), "--draws"),
                       (("hessian", a, "--budget-memory", "inf"), "--budget-memory")):
        res = cli(*args)
        assert flag in _one_error(res) and "plan" not in res.err, args
    assert not (tmp_path / "runs").exists()  # nothing left for the next, sane command to refuse


def test_study_refuses_duplicate_names(cli, tmp_path):
    assert "--optimizers lists 'adam' twice" in _one_error(cli("study", "--optimizers", "adam,adam", "--out",
                                                                  tmp_path / "s"))
    assert "--models lists 'cnn-tiny' twice" in _one_error(cli("study", "--models", "cnn-tiny,cnn-tiny", "--out",
                                                                 tmp_path / "s"))
    assert not (tmp_path / "s").exists()


def _folder(root: Path, sizes: dict[str, int], px: int = 12) -> Path:
    rng = np.random.default_rng(0)
    for cls, n in sizes.items():
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (px, px), dtype=np.uint8)).save(root / cls / f"{i}.png")
    return root


def test_a_class_too_small_for_its_split_is_an_error_with_the_counts(cli, tmp_path):
    data = _folder(tmp_path / "d", {"benign": 8, "malignant": 1})
    msg = _one_error(cli("train", "--data", data, "--model", "cnn-tiny", "--img-size", "16", "--epochs", "1",
                         "--out", tmp_path / "runs"))
    assert "class 'malignant' has 1 image group(s), fewer than the 3 its split needs" in msg
    assert "benign 8, malignant 1" in msg


def test_report_dry_run_plan_honours_m_and_lists_problems(cli, small_data_run, tmp_path):
    res = cli("report", small_data_run, "--dry-run", "--m", "4", "--set", "sharpness.samples=8", "-o",
              tmp_path / "r.html")
    assert res.code == 0, res.err
    assert "sharpness" in res.err and "problem" not in res.err
    res = cli("report", small_data_run, "--dry-run", "--m", "64", "-o", tmp_path / "r.html")
    assert res.code == 0, res.err
    assert "problem:" in res.err and "m=64 is larger than the" in " ".join(res.err.split())


@pytest.fixture
def small_data_run(tmp_path):
    """A 1-epoch cnn-tiny run on a 30-image folder (21 training images)."""
    from landscape.train import TrainConfig, train

    data = _folder(tmp_path / "small", {"benign": 15, "malignant": 15}, px=16)
    cfg = TrainConfig(data=str(data), out=str(tmp_path / "runs"), model="cnn-tiny", img_size=16, epochs=1,
                      batch_size=8)
    return train(cfg, progress=False).run_dir


# -- 6. the CSV reader and odd files ------------------------------------------------------------------------------

@pytest.fixture
def csv_folder(tmp_path):
    return _folder(tmp_path / "ext", {"benign": 3, "malignant": 3})


def _images(folder):
    from landscape.data import load_images

    return load_images(folder, img_size=16)


def _rows(images, groups) -> list[str]:
    return [f"{f},{g}" for f, g in zip(images.files, groups)]


def test_csv_empty_group_ids_are_refused_or_made_singletons(csv_folder, tmp_path):
    from landscape.data.metadata import read_metadata

    images = _images(csv_folder)
    path = tmp_path / "m.csv"
    path.write_text("\n".join(["ID,Case", *_rows(images, ["p1", "", "p2", "p2", "", "p3"])]) + "\n")
    with pytest.raises(LandscapeError, match=r"row 3 \(benign/1.png\) has an empty 'Case', like 2 image") as err:
        read_metadata(images, path, "ID", group_col="Case")
    assert "singleton_groups" in err.value.params
    with pytest.warns(UserWarning, match="2 image"):
        meta = read_metadata(images, path, "ID", group_col="Case", singleton_groups=True)
    assert len(set(meta.groups)) == 5 and meta.singleton_groups == 2
    assert meta.settings()["singleton_groups"] == 2


def test_csv_encodings_binary_ragged_and_huge_fields_are_one_error_naming_the_row(csv_folder, tmp_path):
    from landscape.data.metadata import read_metadata

    images = _images(csv_folder)
    rows = _rows(images, ["p1", "p2", "p3", "p4", "p5", "p6"])
    good = "\n".join(["ID,Case", *rows]) + "\n"
    path = tmp_path / "m.csv"
    for data in (good.encode("utf-8"), b"\xef\xbb\xbf" + good.encode("utf-8")):  # without and with BOM
        path.write_bytes(data)
        assert read_metadata(images, path, "ID", group_col="Case").groups == ["p1", "p2", "p3", "p4", "p5", "p6"]
    cases = [
        ((good.replace("p3", "Jos\u00e9")).encode("latin-1"), r"row 4 is not UTF-8 .*expected UTF-8"),
        (good.encode() + b"\x00\x01\x02", r"row 8 holds a NUL byte"),
        ((good + rows[0].split(",")[0] + "x\n").encode(), r"row 8 has 1 field\(s\), the header 2"),
        ((good + "extra.png,p9,oops\n").encode(), r"row 8 has 3 field\(s\), the header 2"),
        ((good + "big.png," + "x" * 70000 + "\n").encode(), r"row 8 has a field of 70,000 characters"),
    ]
    for data, pattern in cases:
        path.write_bytes(data)
        with pytest.raises(LandscapeError, match=pattern):
            read_metadata(images, path, "ID", group_col="Case")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_named_png_is_skipped_with_a_warning_never_opened(csv_folder, cli):
    os.mkfifo(csv_folder / "benign" / "pipe.png")
    (csv_folder / "malignant" / "link.png").symlink_to(csv_folder / "benign" / "pipe.png")
    done = {}

    def run():
        done["res"] = cli("data", "inspect", csv_folder, "--img-size", "16")

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(60)
    if worker.is_alive():  # it hangs in open(): unblock it so the test process can end
        for name in ("benign/pipe.png",):
            with open(csv_folder / name, "wb"):
                pass
        pytest.fail("data inspect opened the FIFO")
    res = done["res"]
    assert res.code == 0, res.err
    assert "skipped 2 image name(s)" in res.err and "not regular files" in res.err
    assert "6 images" in res.out
