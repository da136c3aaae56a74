"""Compute matching by gradient evaluations: counted per pass, recorded everywhere, matched under any stop rule."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from landscape.io import atomic_torch_save, read_json, safe_torch_load

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")


def _cfg(out, **kw):
    from landscape.train import TrainConfig

    return TrainConfig(model="cnn-tiny", img_size=16, out=str(out), **kw)


def _steps(cfg) -> int:
    """Optimizer steps of one epoch: whole batches of the training split."""
    from landscape.train.prepare import prepare_data

    return len(prepare_data(cfg).tensors["train"][1]) // cfg.batch_size


@pytest.mark.parametrize("optimizer,passes", [("adam", 1), ("sam", 2), ("crsam", 3)])
def test_every_forward_backward_pass_is_a_gradient_evaluation(tmp_path, monkeypatch, optimizer, passes):
    """The count equals the training loss's forward calls (evaluation never calls it), in every record."""
    from landscape.train import train

    calls = {"n": 0}
    real = torch.nn.CrossEntropyLoss.forward

    def counting(self, logits, target):
        calls["n"] += 1
        return real(self, logits, target)

    monkeypatch.setattr(torch.nn.CrossEntropyLoss, "forward", counting)
    cfg = _cfg(tmp_path, epochs=2, optimizer=optimizer)
    res = train(cfg, progress=False)
    per_epoch = _steps(cfg) * passes
    assert calls["n"] == 2 * per_epoch
    assert [h["gradient_evaluations"] for h in read_json(res.run_dir / "history.json")] == [per_epoch, 2 * per_epoch]
    assert all("train_eval_loss" not in h for h in res.history)  # no stop rule: no extra pass over the train split
    assert [safe_torch_load(res.run_dir / f"epoch_{e:03d}.pt")["gradient_evaluations"] for e in (0, 1, 2)] == \
        [0, per_epoch, 2 * per_epoch]
    final = safe_torch_load(res.final)
    assert final["gradient_evaluations"] == 2 * per_epoch
    assert safe_torch_load(res.best)["gradient_evaluations"] in (per_epoch, 2 * per_epoch)
    assert safe_torch_load(res.best)["epoch"] * per_epoch == safe_torch_load(res.best)["gradient_evaluations"]


def test_a_variable_pass_optimizer_counts_the_passes_of_each_step(tmp_path, monkeypatch):
    """An optimizer that adds a pass on every third step: steps + steps // 3, not steps x passes_per_step."""
    from landscape.train import loop, train

    real = loop.create_optimizer

    def variable(*args, **kwargs):
        opt = real(*args, **kwargs)
        one, taken = opt.step, {"n": 0}

        def step(closure):
            taken["n"] += 1
            if taken["n"] % 3 == 0:
                closure()
            return one(closure)

        opt.step = step
        return opt

    monkeypatch.setattr(loop, "create_optimizer", variable)
    cfg = _cfg(tmp_path, epochs=1, keep="last")
    steps = _steps(cfg)
    assert safe_torch_load(train(cfg, progress=False).final)["gradient_evaluations"] == steps + steps // 3


def test_a_budget_takes_budget_over_passes_steps_whatever_stops_other_runs(tmp_path):
    """Adam with 2 epochs + 6 steps of budget: a partial last epoch, the schedule over its own steps, not stopped
    by a target it meets at epoch 1 nor capped by ``epochs=1``; SAM with an odd budget states the remainder.
    """
    from landscape.train import train

    cfg = _cfg(tmp_path, epochs=1, keep="last", stop_train_loss=5.0, lr=2e-3)
    steps = _steps(cfg)
    budget = 2 * steps + 6
    res = train(cfg.replace(gradient_budget=budget, matched_to="sam"), progress=False)
    assert [h["steps"] for h in res.history] == [steps, steps, 6]
    assert [h["gradient_evaluations"] for h in res.history] == [steps, 2 * steps, budget]
    for h, last_step in zip(res.history, (steps - 1, 2 * steps - 1, budget - 1)):  # cosine over the budget's steps
        assert h["lr"] == pytest.approx(1e-3 * (1 + math.cos(math.pi * last_step / budget)), rel=1e-12)
    final = safe_torch_load(res.final)
    assert res.run_dir.name == "phantom-cnn-tiny-adam-s0-cm" and final["gradient_evaluations"] == budget
    assert final["stopping"] == {"rule": "gradient_budget", "budget": budget, "matched_to": "sam", "matched_run": None,
                                 "steps": budget, "remainder": 0, "epoch": 3, "reached": True, "cap": 3,
                                 "target": 5.0, "target_epoch": 1}
    assert final["optimizer"]["compute_matched"] == {"matched_to": "sam", "matched_run": None,
                                                     "gradient_budget": budget}
    odd = train(cfg.replace(optimizer="sam", gradient_budget=2 * steps + 1, matched_to="crsam"), progress=False)
    record = safe_torch_load(odd.final)
    assert odd.run_dir.name.endswith("-sam-s0-cm-crsam") and record["gradient_evaluations"] == 2 * steps
    assert (record["stopping"]["steps"], record["stopping"]["remainder"]) == (steps, 1)


@pytest.mark.parametrize("bad,message", [(dict(gradient_budget=0, matched_to="sam"), "gradient_budget must be an"),
                                         (dict(gradient_budget=10), "go together"),
                                         (dict(gradient_budget=2, matched_to="sam", optimizer="crsam"),
                                          "at least one step of crsam"),
                                         (dict(gradient_budget=10, matched_to="a/b"), "matched_to must be")])
def test_bad_budgets_are_refused(bad, message):
    from landscape.errors import LandscapeError
    from landscape.train import TrainConfig

    with pytest.raises(LandscapeError, match=message):
        TrainConfig(model="cnn-tiny", img_size=16, **bad).validate()


def test_compute_matched_baseline_under_stop_rule_matches_sam_and_crsam(cli, tmp_path):
    """The issue's check: stopped by --stop-train-loss at epoch 1, SAM and CR-SAM set the budgets; Adam
    --compute-matched RUN under the same flag takes exactly as many passes (2 and 3 epochs, not 1).
    """
    from landscape.report.collect import Run
    from landscape.report.compare import pairs
    from landscape.report.rows import group_name

    common = ("--model", "cnn-tiny", "--img-size", "16", "--epochs", "3", "--stop-train-loss", "5", "--keep", "last",
              "--out", tmp_path, "-q")
    runs = {}
    for opt in ("sam", "crsam"):
        assert cli("train", "-o", opt, *common).code == 0
        runs[opt] = tmp_path / f"phantom-cnn-tiny-{opt}-s0"
        res = cli("train", "-o", "adam", *common, "--compute-matched", runs[opt])
        assert res.code == 0, res.err
        runs[f"adam-{opt}"] = tmp_path / ("phantom-cnn-tiny-adam-s0-cm" + ("" if opt == "sam" else "-crsam"))
    payload = {k: safe_torch_load(d / "final.pt") for k, d in runs.items()}
    steps = _steps(_cfg(tmp_path))
    for opt, passes in (("sam", 2), ("crsam", 3)):
        target, matched = payload[opt], payload[f"adam-{opt}"]
        assert target["stopping"]["reached"] and target["epoch"] == 1  # stopped by the rule
        assert matched["gradient_evaluations"] == target["gradient_evaluations"] == passes * steps
        assert matched["epoch"] == passes  # one pass a step: as many epochs as the target's passes
        assert matched["stopping"]["matched_run"] == str(runs[opt])
    objects = [Run(d / "final.pt", payload[k], "x") for k, d in runs.items()]
    assert [group_name(r, False) for r in objects] == ["sam", "adam-cm", "crsam", "adam-cm-crsam"]
    matched, _ = pairs(objects, "adam-cm-crsam")
    assert set(matched) == {"sam", "crsam", "adam-cm"}
    old = {**payload["adam-sam"], "optimizer": {**payload["adam-sam"]["optimizer"], "compute_matched": True}}
    assert group_name(Run(tmp_path / "final.pt", old, "x"), False) == "adam-cm"  # before budgets: twice the epochs


def test_compute_matched_refuses_missing_unfinished_and_uncounted_runs(cli, tmp_path):
    base = ("train", "--model", "cnn-tiny", "--img-size", "16", "--epochs", "1", "--keep", "last", "--out",
            tmp_path / "o")
    res = cli(*base, "--compute-matched", tmp_path / "nowhere")
    assert res.code == 2 and res.err.startswith("error: --compute-matched: ") and "not a run folder" in res.err
    (tmp_path / "unfinished").mkdir()
    res = cli(*base, "--compute-matched", tmp_path / "unfinished")
    assert res.code == 2 and "holds no final.pt" in res.err
    assert cli(*base[:-2], "--out", tmp_path / "old", "-o", "sam", "-q").code == 0
    old = tmp_path / "old" / "phantom-cnn-tiny-sam-s0" / "final.pt"
    payload = safe_torch_load(old)
    del payload["gradient_evaluations"]  # a checkpoint from before the count
    atomic_torch_save(payload, old)
    res = cli(*base, "--compute-matched", old.parent)
    assert res.code == 2 and "records no gradient_evaluations" in res.err
    assert len(res.err.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_each_seed_gets_the_count_of_its_own_target_run(tmp_path):
    """Selected SAM runs listed out of seed order, with different counts: each copy takes its own seed's."""
    from landscape.study.grid import Variant
    from landscape.study.run import _matched_jobs

    runs = {}
    for seed, count in ((0, 40), (1, 52), (2, 46)):
        runs[seed] = tmp_path / f"sam-s{seed}"
        runs[seed].mkdir()
        atomic_torch_save({"gradient_evaluations": count, "optimizer": {"name": "sam"}, "seed": seed},
                          runs[seed] / "final.pt")
    plan = [Variant("adam", "adam", {"lr": 0.001}), Variant("adam", "adam", {"lr": 0.003}),
            Variant("sam", "sam", {"rho": 0.05})]
    selection = {"m/adam": {"selected": "lr0.003"},
                 "m/sam": {"selected": "rho0.05", "selected_setting": {"rho": 0.05},
                           "selected_runs": [str(runs[s]) for s in (2, 0, 1)]}}
    jobs = _matched_jobs(["m"], [0, 1, 2], ["adam"], ["sam"], plan, selection)
    assert [(s, budget, run) for _m, s, _v, budget, run in jobs] == [(0, 40, str(runs[0])), (1, 52, str(runs[1])),
                                                                    (2, 46, str(runs[2]))]
    assert {v.setting["lr"] for _m, _s, v, *_ in jobs} == {0.003} and jobs[0][2].group == "adam-cm"


def _torchrun(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [TORCHRUN, "--standalone", "--nproc-per-node=2", "--no-python", sys.executable, "-m", "landscape", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.skipif(TORCHRUN is None, reason="torchrun not found")
def test_two_ranks_count_global_passes_and_match_in_runs_mode(tmp_path, cli):
    """Data parallel on 2 ranks counts what one process counts; ``study --parallel runs`` deals the
    compute-matched copies out like the candidates and gives each its seed's SAM count.
    """
    train = ("train", "-o", "sam", "--model", "mlp-tiny", "--img-size", "8", "--epochs", "2", "--batch-size", "11",
             "-q")
    assert cli(*train, "--out", tmp_path / "one").code == 0
    done = _torchrun([*train, "--out", str(tmp_path / "two")])
    assert done.returncode == 0, done.stderr[-3000:]
    one, two = (safe_torch_load(tmp_path / d / "phantom-mlp-tiny-sam-s0" / "final.pt") for d in ("one", "two"))
    assert (one["world_size"], two["world_size"]) == (1, 2)
    assert one["gradient_evaluations"] == two["gradient_evaluations"] > 0
    out = tmp_path / "study"
    done = _torchrun(["study", "--quick", "--models", "mlp-tiny", "--optimizers", "adam,sam", "--seeds", "1",
                      "--epochs", "1", "--img-size", "8", "--out", str(out), "--parallel", "runs",
                      "--compute-matched", "sam"])
    assert done.returncode == 0, done.stderr[-3000:]
    study = json.loads((out / "study.json").read_text())
    ranks = study["settings"]["parallel"]["ranks"]
    assert ranks == {"phantom-mlp-tiny-adam-s0": 0, "phantom-mlp-tiny-sam-s0": 1, "phantom-mlp-tiny-adam-s0-cm": 0}
    sam = {safe_torch_load(Path(r) / "final.pt")["seed"]: safe_torch_load(Path(r) / "final.pt")
           for r in study["selection"]["mlp-tiny/sam"]["selected_runs"]}
    for run in study["selection"]["mlp-tiny/adam-cm"]["selected_runs"]:
        cm = safe_torch_load(Path(run) / "final.pt")
        assert cm["gradient_evaluations"] == sam[cm["seed"]]["gradient_evaluations"]
        assert cm["world_size"] == 1


def test_the_count_is_an_optional_checked_checkpoint_field(tiny_run, tmp_path):
    """Checkpoints from before the count still load; a count that is not an integer >= 0 is a damaged field."""
    from landscape.checkpoint import read_payload
    from landscape.errors import LandscapeError

    payload = safe_torch_load(tiny_run / "final.pt")
    assert payload["gradient_evaluations"] == payload["epoch"] * read_json(tiny_run / "history.json")[0][
        "gradient_evaluations"]
    path = tmp_path / "final.pt"
    del payload["gradient_evaluations"]
    atomic_torch_save(payload, path)
    assert "gradient_evaluations" not in read_payload(path)
    for value, message in (("12", "gradient_evaluations is str, not int"),
                           (True, "gradient_evaluations is bool, not int"),
                           (-1, "gradient_evaluations is -1, not an integer >= 0")):
        atomic_torch_save({**payload, "gradient_evaluations": value}, path)
        with pytest.raises(LandscapeError, match=f"damaged: {message}"):
            read_payload(path)


def test_resuming_a_run_from_before_the_count_counts_its_earlier_epochs(tmp_path, monkeypatch):
    """An epoch file without ``gradient_evaluations``: its epochs count every step with all its passes."""
    from landscape.train import loop, train

    cfg = _cfg(tmp_path, epochs=2, optimizer="sam")
    original = loop._Trainer.train_epoch

    def interrupted(self, epoch, *args):
        if epoch == 2:
            raise KeyboardInterrupt
        return original(self, epoch, *args)

    monkeypatch.setattr(loop._Trainer, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, progress=False)
    monkeypatch.setattr(loop._Trainer, "train_epoch", original)
    newest = loop.epoch_files(cfg.run_dir("phantom"))[-1]
    payload = safe_torch_load(newest)
    del payload["gradient_evaluations"]
    atomic_torch_save(payload, newest)
    resumed = train(cfg, progress=False, resume=True)
    assert safe_torch_load(resumed.final)["gradient_evaluations"] == 2 * _steps(cfg) * 2
