"""The GPU check: everything the project needs to learn from a lent GPU, in one bounded run.

    python benchmarks/gpu_check.py --out DIR [--budget-s 480] [--skip tests,nccl]

Without CUDA it prints one line and exits 0. With CUDA it runs, in order and
within ``--budget-s`` seconds of wall time in all (each section also has its
own cap, and a section that no longer fits is skipped and says so):

* ``tests``: the ``cuda``-marked tests (``pytest -m cuda``);
* ``hvp``: seconds of one gradient and one HVP of a 32-image batch for
  resnet50 at 224 px and ViT-S/16 at 224 px; the HVP runs attention on the
  math kernel (fused kernels have no double backward), the gradient on the
  fused kernel (and on math, to show what math costs);
* ``train``: one epoch of resnet50 with SAM on the phantom at 224 px, and the
  same with ``--amp bf16`` when ``landscape train`` has that flag;
* ``hessian``: ``landscape hessian`` on that run's whole training split:
  top-5, trace and spectral density;
* ``nccl``: with two GPUs, one HVP under ``torchrun`` on 2 ranks (nccl)
  against the same HVP in one process (max relative difference).

Every figure goes to ``DIR/gpu_check.json`` (rewritten after each section, so
a run cut short keeps what it measured) and a readable ``DIR/summary.md``.
``--smoke --device cpu`` runs every section with tiny sizes on CPU, to check
the script itself where no GPU is lent.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("tests", "hvp", "train", "hessian", "nccl")
#: Seconds each section may take at most (the whole run is also bounded by --budget-s).
CAPS = {"tests": 150, "hvp": 90, "train": 150, "hessian": 150, "nccl": 60}
#: Set for the tests this script runs: the test of this script itself then skips (the script is running anyway).
INSIDE = "LANDSCAPE_GPU_CHECK"


class Check:
    """The run's record, its deadline, and its files."""

    def __init__(self, out: Path, budget_s: float, device: str, smoke: bool):
        self.out, self.device, self.smoke = out, device, smoke
        self.deadline = time.monotonic() + budget_s
        self.record: dict = {"settings": {"budget_s": budget_s, "device": device, "smoke": smoke},
                             "sections": {}}
        self.lines: list[str] = []

    def left(self, section: str) -> float:
        """Seconds ``section`` may use: its cap or what is left of the budget, whichever is less."""
        return min(CAPS[section], self.deadline - time.monotonic())

    def save(self, section: str, result: dict, lines: list[str]) -> None:
        self.record["sections"][section] = result
        self.lines += [f"## {section}", "", *lines, ""]
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "gpu_check.json").write_text(json.dumps(self.record, indent=2, default=str) + "\n")
        (self.out / "summary.md").write_text("\n".join(["# GPU check", "", *self._head(), "", *self.lines]) + "\n")

    def _head(self) -> list[str]:
        env = self.record["environment"]
        return [f"- device: {env['device_name']} x{env['device_count']}, torch {env['torch']}, CUDA {env['cuda']}",
                f"- budget: {self.record['settings']['budget_s']:.0f} s; smoke: {self.smoke}"]


def run(args: list, timeout: float, env: dict | None = None) -> dict:
    """A subprocess with a time limit: ``{returncode, seconds, tail}`` (returncode None when it timed out)."""
    start = time.perf_counter()
    try:
        done = subprocess.run([str(a) for a in args], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=max(timeout, 1))
        code, text = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        code = None
        text = "".join(t.decode() if isinstance(t, bytes) else (t or "") for t in (exc.stdout, exc.stderr))
    return {"returncode": code, "seconds": round(time.perf_counter() - start, 2), "tail": text[-3000:]}


def landscape(*args) -> list:
    return [sys.executable, "-m", "landscape", *args]


def section_tests(check: Check) -> tuple[dict, list[str]]:
    res = run([sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", "tests"],
              check.left("tests"), env={**os.environ, INSIDE: "1"})
    summary = re.findall(r"^=*\s*(\d+ (?:passed|failed|skipped|error).*?)\s*=*$", res["tail"], re.M)
    res["summary"] = summary[-1] if summary else None
    return res, [f"`pytest -m cuda`: {res['summary'] or 'no summary'} (exit {res['returncode']}, "
                 f"{res['seconds']} s)"]


def _seconds(fn, sync, repeats: int = 3) -> float:
    fn()  # warm-up: kernels chosen, graphs built
    sync()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def time_model(name: str, device, size: int, batch: int, sync) -> dict:
    """Seconds of one gradient (fused attention, and math for ViT) and one HVP (math) of ``name`` on one batch."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from landscape.hessian import hvp_operator
    from landscape.models import create

    torch.manual_seed(0)
    model = create(name, num_classes=3, img_size=size).to(device)
    x = torch.randn(batch, 1, size, size, device=device)
    y = torch.randint(0, 3, (batch,), device=device)
    loss_fn = torch.nn.CrossEntropyLoss()
    params = [p for p in model.parameters() if p.requires_grad]

    def gradient():
        torch.autograd.grad(loss_fn(model(x), y), params)

    def gradient_math():
        with sdpa_kernel(SDPBackend.MATH):
            gradient()

    op = hvp_operator(model, loss_fn, [(x, y)])
    v = torch.randn(op.size, device=device)
    product = (lambda: op @ v) if hasattr(op, "__matmul__") else (lambda: op.matvec(v))
    row = {"img_size": size, "batch": batch, "parameters": op.size,
           "gradient_s": _seconds(gradient, sync), "hvp_s": _seconds(product, sync)}
    if "vit" in name:
        row["gradient_math_s"] = _seconds(gradient_math, sync)
    row["hvp_over_gradient"] = row["hvp_s"] / row["gradient_s"]
    return row


def section_hvp(check: Check) -> tuple[dict, list[str]]:
    import torch

    device = torch.device(check.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    size, batch = (32, 4) if check.smoke else (224, 32)
    out, lines = {}, []
    for name in ("resnet50", "vit_small_patch16_224"):
        if check.left("hvp") < 10:
            out[name] = {"skipped": "time limit"}
            lines.append(f"- {name}: skipped (time limit)")
            continue
        row = out[name] = time_model(name, device, size, batch, sync)
        extra = f", gradient on math attention {row['gradient_math_s']:.4f} s" if "vit" in name else ""
        lines.append(f"- {name} at {size} px, batch {batch}: gradient {row['gradient_s']:.4f} s, HVP "
                     f"{row['hvp_s']:.4f} s, HVP/gradient {row['hvp_over_gradient']:.2f}{extra}")
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return out, lines


def train_args(check: Check) -> list:
    """The shared arguments of the training runs."""
    model, size = ("cnn-tiny", 32) if check.smoke else ("resnet50", 224)
    return ["train", "--model", model, "--optimizer", "sam", "--epochs", 1, "--img-size", size, "--batch-size", 32,
            "--device", check.device, "--out", check.out / "runs", "--seed", 0, "--overwrite"]


def section_train(check: Check) -> tuple[dict, list[str]]:
    usage = subprocess.run([str(a) for a in landscape("train", "--help")], cwd=ROOT, capture_output=True, text=True,
                           timeout=60, env={**os.environ, "COLUMNS": "200"}).stdout
    has_amp = re.search(r"^\W*--amp\b", usage, re.M) is not None  # an option row, not an example
    out, lines = {"amp_flag": has_amp}, []
    for name, extra in (("fp32", []), ("bf16", ["--amp", "bf16"])):
        if extra and not has_amp:
            out[name] = {"skipped": "landscape train has no --amp"}
            lines.append("- bf16: skipped (`landscape train` has no `--amp`)")
            continue
        limit = check.left("train") if name == "bf16" or not has_amp else check.left("train") / 2
        res = run(landscape(*train_args(check), "--run-name", f"sam-{name}", *extra,
                            "--json", check.out / f"train-{name}.json"), limit)
        path = check.out / f"train-{name}.json"
        res["result"] = json.loads(path.read_text()) if path.is_file() else None
        out[name] = res
        lines.append(f"- SAM, 1 epoch, {name}: exit {res['returncode']}, {res['seconds']} s wall (process start, "
                     "data, epoch, evaluation)")
    return out, lines


def section_hessian(check: Check) -> tuple[dict, list[str]]:
    run_dir = check.out / "runs" / "sam-fp32"
    if not (run_dir / "final.pt").is_file():
        return {"skipped": "no trained run (the train section failed or was skipped)"}, ["- skipped: no run"]
    samples, budget = ("16", ["--budget-hvps", 40]) if check.smoke else ("all", [])
    path = check.out / "hessian.json"
    res = run(landscape("hessian", run_dir, "--top-k", 5, "--trace", "--density", "--samples", samples, *budget,
                        "--device", check.device, "--seed", 0, "--json", path), check.left("hessian"))
    res["result"] = json.loads(path.read_text()) if path.is_file() else None
    lines = [f"- top-5 + trace + density on {samples} training images: exit {res['returncode']}, {res['seconds']} s"]
    if res["result"]:
        r = res["result"]["result"]
        top, tr, dens = r["top_k"], r.get("trace") or {}, r.get("density") or {}
        lines.append(f"- top-5 {[round(v, 4) for v in top['eigenvalues']]} in {top['hvps']} HVPs (certified: "
                     f"{all(top['converged'])}); trace {tr.get('estimate')} in {tr.get('hvps')} more; density "
                     f"{dens.get('hvps')} HVPs; {r['hvps']} HVPs in all, {r['hvp_seconds']:.3f} s each")
    return res, lines


def section_nccl(check: Check) -> tuple[dict, list[str]]:
    import torch

    if check.device != "cuda" or torch.cuda.device_count() < 2:
        return {"skipped": "fewer than 2 GPUs"}, ["- skipped: fewer than 2 GPUs"]
    helper = ROOT / "tests" / "dist_helper.py"
    one, two = check.out / "nccl-1", check.out / "nccl-2"
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    half = check.left("nccl") / 2
    res = {"one": run([sys.executable, helper, "hvp-device", one], half),
           "two": run([torchrun, "--standalone", "--nproc-per-node=2", "--no-python", sys.executable, helper,
                       "hvp-device", two], half)}
    if all((p / "result.json").is_file() for p in (one, two)):
        a = torch.tensor(json.loads((one / "result.json").read_text())["hv"], dtype=torch.float64)
        b = torch.tensor(json.loads((two / "result.json").read_text())["hv"], dtype=torch.float64)
        res["max_rel_diff"] = float((a - b).abs().max() / a.abs().max())
        return res, [f"- 2-rank nccl HVP vs one process: max relative difference {res['max_rel_diff']:.2e}"]
    return res, ["- failed: see gpu_check.json"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="folder for gpu_check.json and summary.md")
    parser.add_argument("--budget-s", type=float, default=480.0, help="wall seconds for the whole check")
    parser.add_argument("--skip", default="", help=f"comma list of sections to skip: {', '.join(SECTIONS)}")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the script, measures nothing")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"), help="cpu only with --smoke")
    args = parser.parse_args()
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"gpu_check: no CUDA device (torch {torch.__version__}, CUDA build {torch.version.cuda}): "
              "nothing to check")
        return 0
    if args.device == "cpu" and not args.smoke:
        parser.error("--device cpu needs --smoke")
    skip = {s for s in args.skip.split(",") if s}
    if skip - set(SECTIONS):
        parser.error(f"--skip: unknown sections {sorted(skip - set(SECTIONS))}; choose from {', '.join(SECTIONS)}")
    check = Check(args.out, args.budget_s, args.device, args.smoke)
    cuda = args.device == "cuda"
    check.record["environment"] = {
        "device_name": torch.cuda.get_device_name(0) if cuda else platform.processor() or "cpu",
        "device_count": torch.cuda.device_count() if cuda else 1, "torch": torch.__version__,
        "cuda": torch.version.cuda, "python": platform.python_version(),
        "git": run(["git", "rev-parse", "--short", "HEAD"], 10)["tail"].strip(),
    }
    os.environ.setdefault("LANDSCAPE_CACHE", str(args.out / "cache"))  # the lent machine's home is not ours
    sections = {"tests": section_tests, "hvp": section_hvp, "train": section_train, "hessian": section_hessian,
                "nccl": section_nccl}
    for name in SECTIONS:
        if name in skip:
            continue
        if check.left(name) < 5:
            check.save(name, {"skipped": "out of time"}, ["- skipped: out of time"])
            continue
        start = time.perf_counter()
        try:
            result, lines = sections[name](check)
        except Exception as exc:  # one broken section must not cost the others their GPU time
            result, lines = {"error": f"{type(exc).__name__}: {exc}"[:2000]}, [f"- error: {type(exc).__name__}: "
                                                                                f"{str(exc)[:200]}"]
        if isinstance(result, dict):
            result.setdefault("section_s", round(time.perf_counter() - start, 2))
        check.save(name, result, lines)
        print("\n".join(lines), flush=True)
    print(f"gpu_check: wrote {args.out / 'gpu_check.json'} and {args.out / 'summary.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
