"""Work run by tests/test_distributed.py, alone or under ``torchrun --standalone --nproc-per-node 2``.

``python tests/dist_helper.py MODE OUT``; rank 0 writes what it computed under
OUT (the comparison is the test's). Modes:

* ``numbers``: Hessian HVP/top-k/trace/SLQ, m-sharpness, data-parallel
  training (adam, sam, gsam), one ``--sam-local`` step (reference by hand) and a 2D surface, all float64 on tiny models,
  13 samples (uneven per rank);
* ``surface``: only the surface (resuming ``OUT/surface.partial.npz``);
* ``surface-kill``: the surface, rank 0 killed (SIGKILL) once two rows are saved;
* ``hvp-device``: one HVP on this rank's device (``cuda:LOCAL_RANK`` with CUDA);
* ``stop-after-1``: train that adam run but stop once epoch 1 is saved (exit code 2);
* ``resume``: continue the adam run of ``numbers`` under ``OUT/runs`` (``--resume``);
* ``fail``: rank 1 raises while rank 0 waits in a collective.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import torch

from landscape import distributed
from landscape.errors import LandscapeError


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))


def _data(n: int = 13) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 1, 4, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


def hessian_numbers() -> dict:
    from landscape.hessian import spectral_density, top_eigenvalues, trace
    from landscape.hessian.operator import HessianOperator

    x, y = _data()
    op = HessianOperator(_model(), torch.nn.CrossEntropyLoss(), [(x[:5], y[:5]), (x[5:], y[5:])])
    v = torch.linspace(-1, 1, op.size)
    hv = op.matvec(v)
    eig = top_eigenvalues(op, k=3, tol=1e-8, seed=0)
    tr = trace(op, method="hutch++", rtol=1e-3, max_hvps=30, seed=0)
    dens = spectral_density(op, runs=2, steps=10, seed=0)
    return {"local_samples": op.local_samples, "num_samples": op.num_samples, "hv": hv.tolist(),
            "eigenvalues": list(eig.eigenvalues), "eig_hvps": eig.hvps, "trace": tr.estimate, "trace_hvps": tr.hvps,
            "nodes": [list(map(float, r)) for r in dens.nodes], "weights": [list(map(float, r)) for r in dens.weights],
            "hvps": op.hvps}


def sharpness_numbers() -> dict:
    from landscape.sharpness import (
        average_case_sharpness,
        sub_batches,
        worst_case_sharpness,
    )

    x, y = _data()
    batches = sub_batches(x, y, m=2, samples=10, seed=0)  # 5 sub-batches: 3 and 2 per rank
    loss = torch.nn.CrossEntropyLoss()
    avg = average_case_sharpness(_model(), loss, batches, [0.05, 0.1], draws=2, seed=0)
    worst = worst_case_sharpness(_model(), loss, batches, [0.05, 0.1], steps=2, seed=0)
    return {"average": avg.per_batch.tolist(), "worst": worst.per_batch.tolist(), "base": worst.base_loss,
            "passes": [avg.passes, worst.passes]}


def _train_config(out: Path):
    from landscape.train import TrainConfig

    return TrainConfig(model="mlp-tiny", img_size=8, epochs=2, batch_size=11, out=str(out / "runs"), seed=3)


def train_numbers(out: Path) -> dict:
    from landscape.train import train_all

    runs = train_all(_train_config(out), ["adam", "sam", "gsam"], progress=False)
    return {r.run_dir.name.split("-")[-2]: str(r.final) for r in runs}


def sam_local_step() -> list:
    """One ``--sam-local`` SAM step on a global batch of 11; in one process the reference, by hand.

    Reference (SAM paper's m-sharpness over the two slices a 2-rank job uses):
    per slice r, e_r = rho g_r / ||g_r||, g+_r at w + e_r; Adam steps with
    sum_r (n_r / 11) g+_r.
    """
    from landscape.optim import create_optimizer
    from landscape.train.parallel import DataParallel

    x, y = _data(11)
    loss, model, rho, lr = torch.nn.CrossEntropyLoss(), _model(4), 0.05, 0.01
    params = list(model.parameters())
    if distributed.active():
        opt = create_optimizer("sam", model, base="adam", lr=lr, rho=rho)
        dp = DataParallel(model, opt, sync_bn=False, sam_local=True, batch_size=11)
        opt.step(dp.closure(loss, *dp.local(x, y), 11))
    else:
        w0 = [p.detach().clone() for p in params]
        direction = [torch.zeros_like(p) for p in params]
        for part in range(2):
            r = distributed.shard(11, part, 2)
            xs, ys = x[r.start:r.stop], y[r.start:r.stop]
            g = torch.autograd.grad(loss(model(xs), ys), params)
            norm = torch.sqrt(sum((t ** 2).sum() for t in g))
            with torch.no_grad():
                for p, t in zip(params, g):
                    p.add_(t, alpha=float(rho / (norm + 1e-12)))
            for d, t in zip(direction, torch.autograd.grad(loss(model(xs), ys), params)):
                d.add_(t, alpha=len(ys) / 11)
            with torch.no_grad():
                for p, w in zip(params, w0):
                    p.copy_(w)
        opt = torch.optim.Adam(params, lr=lr)
        for p, d in zip(params, direction):
            p.grad = d
        opt.step()
    return [v for p in params for v in p.detach().flatten().tolist()]


def surface(resume_path: Path, kill_after: int | None = None):
    from landscape.surface.evaluate import evaluate_surface

    model = _model(2)
    x, y = _data()
    g = torch.Generator().manual_seed(5)
    dirs = [{n: torch.randn(p.shape, generator=g) for n, p in model.named_parameters()} for _ in range(2)]

    def stop(row, *_):
        if kill_after is not None and row + 1 >= kill_after and distributed.is_main():
            os.kill(os.getpid(), signal.SIGKILL)

    arrays = evaluate_surface(model, torch.nn.CrossEntropyLoss(), (x, y), dirs, torch.linspace(-1, 1, 5).tolist(),
                              torch.linspace(-1, 1, 4).tolist(), batch_size=4, fast=False, resume_path=resume_path,
                              callback=stop)
    return {"loss": arrays.loss.tolist(), "accuracy": arrays.accuracy.tolist(), "evaluated": arrays.evaluated}


def main(mode: str, out: Path) -> None:
    distributed.init()
    out.mkdir(parents=True, exist_ok=True)
    if mode == "numbers":
        result = {"world_size": distributed.world_size(), "hessian": hessian_numbers(),
                  "sharpness": sharpness_numbers(), "sam_local": sam_local_step(), "train": train_numbers(out),
                  "surface": surface(out / "surface.partial.npz")}
    elif mode == "hvp-device":  # the HVP on this rank's device (cuda:LOCAL_RANK under torchrun with CUDA)
        from landscape.hessian.operator import HessianOperator

        x, y = _data()
        op = HessianOperator(_model().to(distributed.device()), torch.nn.CrossEntropyLoss(), [(x[:5], y[:5]), (x[5:],
                                                                                                               y[5:])])
        hv = op.matvec(torch.linspace(-1, 1, op.size))
        result = {"device": str(op.device), "world_size": distributed.world_size(), "hv": hv.tolist()}
    elif mode == "stop-after-1":  # train adam as in ``numbers`` but stop before epoch 2 is saved (an interruption)
        from landscape.train import loop

        def stop(self, epoch, check=loop._Trainer.check_finite):
            if epoch == 2:
                raise LandscapeError("stopped during epoch 2")
            check(self, epoch)

        loop._Trainer.check_finite = stop
        loop.train(_train_config(out), progress=False)
    elif mode == "resume":  # continue OUT/runs/<adam run> from its last epoch file
        from landscape.train import train

        result = {"final": str(train(_train_config(out), progress=False, resume=True).final)}
    elif mode == "surface":
        result = {"surface": surface(out / "surface.partial.npz")}
    elif mode == "surface-kill":
        result = {"surface": surface(out / "surface.partial.npz", kill_after=2)}
    elif mode == "fail":
        if distributed.rank() == 1:
            raise LandscapeError("deliberate failure")
        distributed.barrier()
        result = {}
    else:
        raise SystemExit(f"unknown mode {mode}")
    result["gathered"] = distributed.all_gather_object(distributed.rank())
    if distributed.is_main():
        (out / "result.json").write_text(json.dumps(result))
    distributed.finish()


if __name__ == "__main__":  # not at import: pytest's --doctest-modules imports this file into its workers
    from landscape.cli import guarded

    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)

    sys.exit(guarded(lambda: main(sys.argv[1], Path(sys.argv[2]))))  # errors exactly as the CLI reports them
