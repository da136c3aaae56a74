"""Hessian eigenvalues and trace: landscape.hessian versus PyHessian, same checkpoint, same run.

Both work on the Hessian of the mean cross-entropy of a trained cnn-small
BUSI checkpoint over the same ``--samples`` training images, BatchNorm in eval
mode, on CPU. The unit of cost is a Hessian-vector product (HVP) over all
images. Reported per task: HVPs, seconds and the relative error against a
reference:

* eigenvalues: the same Lanczos process continued to residual
  ``<= --ref-tol * |lambda|`` (its residual bounds the reference's own error;
  HVPs in float32 as in the runs compared, so the floor is ~1e-6);
* trace: Hutch++ (``rtol=1e-3``) continued from the reference's Krylov basis
  with an independent probe stream and at most ``--ref-trace-hvps`` more
  products; its own 95% CI is printed, and errors below its half-width are
  not resolved (an exact trace needs one HVP per parameter).

Because the runs share one seed, this project's top-1, top-5 and reference
are one Lanczos sequence stopped at successive points (a fresh run with the
same seed makes the identical products). The trace row is the trace that
``landscape hessian`` computes after its top-5, reusing that Krylov basis; its
HVPs include the top-5 ones. Goals: top-1 <= 10 HVPs certified to 1e-3,
top-5 <= 25 HVPs, trace within 1% in <= 100 HVPs, HVP / gradient <= 3.5.

PyHessian (PyPI 0.1, ``pip install pyhessian``, the ``bench`` extra) runs with
``cuda=False`` on one batch holding all images (its fastest mode: the
gradient graph is built once and kept). Its HVPs are counted by wrapping
``pyhessian.hessian.hessian_vector_product``. Its ``density()`` calls
``torch.eig``, removed from PyTorch; the script shows that with a 2-step call.

    python benchmarks/bench_hessian.py [--ckpt RUN/final.pt] [--data ../shared/data/busi] [--threads 1]

Without ``--ckpt`` it trains cnn-small on BUSI for ``--epochs`` first.
"""

from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path

import numpy as np
import torch
from _common import DEFAULT_DATA, trained_checkpoint

from landscape.checkpoint import load_checkpoint
from landscape.hessian import HessianOperator, top_eigenvalues, trace
from landscape.hessian.krylov import Krylov, generator
from landscape.hessian.lanczos import LANCZOS_STREAM


def checkpoint_path(args) -> Path:
    """``--ckpt``, or a cnn-small trained on ``--data`` for ``--epochs``."""
    return trained_checkpoint(args.ckpt, args.data, args.epochs, 64, "hessian")


def log(text: str) -> None:
    print(text, flush=True)


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def rel_errors(values, reference) -> float:
    """Largest relative error of ``values`` (sorted descending) against ``reference``."""
    values = np.sort(np.asarray(values, dtype=float))[::-1]
    reference = np.asarray(reference, dtype=float)
    return float(np.max(np.abs(values - reference) / np.abs(reference)))


class Counter:
    """Counts calls of PyHessian's ``hessian_vector_product`` (one HVP over its single batch)."""

    def __init__(self, module):
        self.module, self.original, self.calls = module, module.hessian_vector_product, 0

        def counted(*args, **kwargs):
            self.calls += 1
            return self.original(*args, **kwargs)

        module.hessian_vector_product = counted

    def take(self) -> int:
        calls, self.calls = self.calls, 0
        return calls


def run_pyhessian(model, loss_fn, x, y, seed: int) -> dict:
    ph = importlib.import_module("pyhessian.hessian")  # the package's `hessian` attribute is the class

    counter = Counter(ph)
    out = {}
    for name, k in (("top-1", 1), ("top-5", 5)):
        torch.manual_seed(seed)
        start = time.perf_counter()
        hess = ph.hessian(model, loss_fn, data=(x, y), cuda=False)
        values, _ = hess.eigenvalues(maxIter=100, tol=1e-3, top_n=k)
        out[name] = {"values": values, "hvps": counter.take(), "seconds": time.perf_counter() - start}
        log(f"PyHessian {name}: {np.round(values, 4).tolist()} in {out[name]['hvps']} HVPs")
    torch.manual_seed(seed)
    start = time.perf_counter()
    hess = ph.hessian(model, loss_fn, data=(x, y), cuda=False)
    samples = hess.trace(maxIter=100, tol=1e-3)
    out["trace"] = {"values": float(np.mean(samples)), "hvps": counter.take(), "seconds": time.perf_counter() - start}
    log(f"PyHessian trace: {out['trace']['values']:.4f} in {out['trace']['hvps']} HVPs")
    try:
        hess.density(iter=2, n_v=1)
        out["density"] = "ran"
    except Exception as exc:  # the PyPI release calls torch.eig
        out["density"] = f"broken: {type(exc).__name__}: {str(exc).splitlines()[0][:70]}"
    counter.take()
    v = [torch.randn_like(p) for p in hess.params]
    out["hvp_seconds"] = best_of(lambda: ph.hessian_vector_product(hess.gradsH, hess.params, v), 3)
    return out


def first_certified(krylov, k: int, tol: float) -> int | None:
    """The fewest steps of this Lanczos run after which its ``k`` largest Ritz pairs all certify to ``tol``.

    Computed from the recorded coefficients of every prefix (no products): what any stopping rule could achieve
    from this start vector, to compare with where ours stopped.
    """
    for m in range(k, krylov.m + 1):
        h = krylov.hbar[: m + 1, :m]
        theta, y = np.linalg.eigh((h[:m] + h[:m].T) / 2)
        res = np.linalg.norm(h @ y - np.vstack([y, np.zeros((1, m))]) * theta, axis=0)
        if np.all(res[-k:] <= tol * np.abs(theta[-k:])):
            return m
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", help="trained cnn-small checkpoint (default: train one)")
    parser.add_argument("--data", default=str(DEFAULT_DATA) if DEFAULT_DATA.is_dir() else None)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--ref-tol", type=float, default=1e-5)
    parser.add_argument("--ref-trace-hvps", type=int, default=100)
    parser.add_argument("--skip-pyhessian", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    ck = load_checkpoint(checkpoint_path(args), device="cpu")
    loader = ck.loader("train", batch_size=args.batch_size, samples=args.samples, seed=args.seed)
    x = torch.cat([b[0] for b in loader])
    y = torch.cat([b[1] for b in loader])
    model, loss_fn = ck.model, ck.loss_fn
    op = HessianOperator(model, loss_fn, loader)
    log(f"checkpoint {ck.path} ({ck.meta['model']['name']}, {op.size} parameters), {op.num_samples} training images, "
          f"BN eval, {torch.get_num_threads()} thread(s), torch {torch.__version__}")

    # ---------------------------------------------------------------- this project
    ours = {}
    krylov = Krylov(op, generator(args.seed, LANCZOS_STREAM))
    start = time.perf_counter()
    for name, k in (("top-1", 1), ("top-5", 5)):
        res = top_eigenvalues(op, k=k, tol=1e-3, seed=args.seed, krylov=krylov)
        ours[name] = {"values": res.eigenvalues, "hvps": krylov.steps, "seconds": time.perf_counter() - start,
                      "certified": all(res.converged),
                      "residual": max(r / abs(v) for r, v in zip(res.residuals, res.eigenvalues))}
        log(f"ours {name}: {np.round(res.eigenvalues, 4).tolist()} in {krylov.steps} HVPs")
    tr = trace(op, rtol=0.01, max_hvps=100, seed=args.seed, krylov=krylov)
    ours["trace"] = {"values": tr.estimate, "hvps": ours["top-5"]["hvps"] + tr.hvps,
                     "seconds": time.perf_counter() - start, "ci": tr.ci, "stopped_by": tr.stopped_by}
    log(f"ours trace: {tr.estimate:.4f} CI {tr.ci} (+{tr.hvps} HVPs, rank {tr.rank}, {tr.samples} samples)")

    # ---------------------------------------------------------------- reference eigenvalues
    ref = top_eigenvalues(op, k=5, tol=args.ref_tol, max_hvps=200, seed=args.seed, krylov=krylov)
    ref_res = max(r / abs(v) for r, v in zip(ref.residuals, ref.eigenvalues))
    log(f"reference eigenvalues {np.round(ref.eigenvalues, 4).tolist()} (max residual/|lambda| {ref_res:.1e}, "
        f"{krylov.steps} Lanczos steps in all)")
    earliest = first_certified(krylov, 5, 1e-3) if krylov.block_start == 0 else None
    log(f"stopping rule: top-5 stopped after {ours['top-5']['hvps']} HVPs; the earliest step at which all five "
        f"certify from this start vector: {earliest} (unrestarted Lanczos with full reorthogonalisation; a "
        "single-vector Krylov method cannot certify sooner from the same start)")

    # ---------------------------------------------------------------- PyHessian
    peer = None if args.skip_pyhessian else run_pyhessian(model, loss_fn, x, y, args.seed)

    # ---------------------------------------------------------------- reference trace
    ref_trace = trace(op, rtol=1e-3, max_hvps=args.ref_trace_hvps, seed=args.seed + 1000, krylov=krylov)
    ref_half = (ref_trace.ci[1] - ref_trace.ci[0]) / 2 / abs(ref_trace.estimate)
    log(f"reference trace {ref_trace.estimate:.4f}, 95% CI +-{100 * ref_half:.2f}% (rank {ref_trace.rank} exact part "
        f"+ {ref_trace.samples} deflated Hutchinson samples)")

    # ---------------------------------------------------------------- cost of one HVP
    params = [p for p in model.parameters() if p.requires_grad]
    batches = list(loader)

    def gradient():
        for bx, by in batches:
            torch.autograd.grad(loss_fn(model(bx), by), params)

    cold = HessianOperator(model, loss_fn, loader, graph_memory=0)
    v = torch.randn(op.size, generator=torch.Generator().manual_seed(1))
    t_grad = best_of(gradient, 3)
    t_warm = best_of(lambda: op.matvec(v), 3)
    t_cold = best_of(lambda: cold.matvec(v), 2)

    # ---------------------------------------------------------------- table
    refs = {"top-1": ref.eigenvalues[:1], "top-5": ref.eigenvalues, "trace": [ref_trace.estimate]}
    print()
    print(f"{'task':<8}{'ours HVPs':>10}{'ours s':>9}{'ours err':>10}{'PyH HVPs':>10}{'PyH s':>9}{'PyH err':>10}"
          f"{'HVP ratio':>11}{'time ratio':>11}")
    for task in ("top-1", "top-5", "trace"):
        o = ours[task]
        o_err = rel_errors(np.atleast_1d(o["values"]), refs[task])
        row = f"{task:<8}{o['hvps']:>10d}{o['seconds']:>9.1f}{o_err:>10.1e}"
        if peer:
            p = peer[task]
            p_err = rel_errors(np.atleast_1d(p["values"]), refs[task])
            row += (f"{p['hvps']:>10d}{p['seconds']:>9.1f}{p_err:>10.1e}{p['hvps'] / o['hvps']:>10.2f}x"
                    f"{p['seconds'] / o['seconds']:>10.2f}x")
        print(row)
    print(f"(ours top-1/top-5 certified: {ours['top-1']['certified']}/{ours['top-5']['certified']}, "
          f"max residual/|lambda| {ours['top-5']['residual']:.1e}; trace {ours['trace']['values']:.4f} "
          f"95% CI [{ours['trace']['ci'][0]:.4f}, {ours['trace']['ci'][1]:.4f}], stopped by "
          f"{ours['trace']['stopped_by']})")
    print()
    print(f"one gradient over {op.num_samples} images: {t_grad:.2f} s")
    print(f"HVP / gradient: ours {t_warm / t_grad:.2f} (graph kept), {t_cold / t_grad:.2f} (graph rebuilt per HVP)"
          + (f"; PyHessian {peer['hvp_seconds'] / t_grad:.2f} (graph kept)" if peer else ""))
    if peer:
        print(f"PyHessian density(): {peer['density']}")
    trace_err = rel_errors([ours["trace"]["values"]], refs["trace"])
    summary = (f"summary: top-1 {ours['top-1']['hvps']} HVPs, top-5 {ours['top-5']['hvps']} HVPs "
               f"(err {rel_errors(ours['top-5']['values'], refs['top-5']):.0e})")
    if peer:
        summary += (f" vs PyHessian {peer['top-5']['hvps']} "
                    f"(err {rel_errors(peer['top-5']['values'], refs['top-5']):.0e})")
    summary += (f"; trace err {100 * trace_err:.2f}% in {ours['trace']['hvps']} HVPs; "
                f"HVP/grad {t_warm / t_grad:.2f}")
    print(summary)


if __name__ == "__main__":
    main()
