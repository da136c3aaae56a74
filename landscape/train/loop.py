"""The training loop: closure-based optimizer steps, per-epoch checkpoints, resume.

Determinism: epoch ``e`` draws its shuffling, augmentation and dropout from
``seed * 1_000_003 + e``, and the learning rate is a pure function of the global
step, so a resumed run repeats exactly what an uninterrupted one would do.

Compute: ``gradient_evaluations`` counts the forward/backward passes over a
mini-batch that training used (every call of the step's closure: 1 per Adam
step, 2 per SAM step, 3 per CR-SAM step, fewer for a step an optimizer gave up
after a non-finite pass), per global batch, so it does not depend on the
number of ``torchrun`` ranks. Evaluation forward passes (validation, the
training-split cross-entropy of ``stop_train_loss``, the final metrics) are
not gradient evaluations. It is recorded cumulatively in every
``history.json`` epoch and as the top-level ``gradient_evaluations`` of every
checkpoint. A run with ``gradient_budget`` takes ``gradient_budget //
passes_per_step`` steps (:mod:`landscape.train.matching`).

Under ``torchrun`` the steps are data parallel (:mod:`landscape.train.parallel`);
the global batches do not depend on the world size, so ``--resume`` may use
another one. Only rank 0 writes files.
"""

from __future__ import annotations

import math
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from landscape import distributed, logs
from landscape.data import augment
from landscape.errors import LandscapeError
from landscape.io import atomic_torch_save, check_writable, nonfinite_entries, read_json, safe_torch_load, write_json
from landscape.optim import BASE_DEFAULTS, create_optimizer
from landscape.optim.groups import weight_decay_groups
from landscape.optim.perturb import global_norm
from landscape.progress import progress_bar
from landscape.runlock import run_lock
from landscape.train.config import TrainConfig
from landscape.train.evaluate import mean_cross_entropy, split_metrics
from landscape.train.parallel import DataParallel
from landscape.train.payload import checkpoint_payload
from landscape.train.prepare import Prepared, build_model, prepare_data, resolve_device
from landscape.train.schedule import lr_at

_EPOCH_RE = re.compile(r"epoch_(\d{3,})\.pt$")
#: Files and folders of a run that a retrain (``overwrite``) removes; ``.lock`` stays with its holder.
RUN_FILES = ("final.pt", "best.pt", "history.json", "config.json", "analysis", "tensorboard")


@dataclass
class TrainResult:
    """Where a finished run lives and what it scored."""

    run_dir: Path
    final: Path
    best: Path
    history: list[dict]
    metrics: dict
    wall_time_s: float


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of epoch ``epoch``'s randomness (shuffle, augmentation, dropout)."""
    return seed * 1_000_003 + epoch


def drop_optimizer_state(path: Path) -> None:
    """Rewrite checkpoint ``path`` without its ``optimizer_state`` (atomically; no-op when it has none)."""
    payload = safe_torch_load(path)
    if payload.pop("optimizer_state", None) is not None:
        atomic_torch_save(payload, path)


def best_payload(full: dict) -> dict:
    """What ``best.pt`` holds: an epoch's payload without optimizer state and history."""
    return {k: v for k, v in full.items() if k not in ("optimizer_state", "history")}


def epoch_files(run_dir: Path) -> list[Path]:
    """``epoch_NNN.pt`` files of a run, sorted by epoch."""
    files = [p for p in Path(run_dir).glob("epoch_*.pt") if _EPOCH_RE.search(p.name)]
    return sorted(files, key=lambda p: int(_EPOCH_RE.search(p.name).group(1)))


def train(cfg: TrainConfig, progress: bool = True, resume: bool = False, overwrite: bool = False,
          prepared: Prepared | None = None) -> TrainResult:
    """Train one run into ``cfg.run_dir(...)``; ``resume`` continues from its last epoch file.

    Raises :class:`LandscapeError` on bad configuration, an existing finished or
    unfinished run (without ``resume``/``overwrite``), a run folder held by another
    writer (see :mod:`landscape.runlock`), and non-finite losses, weights or
    buffers (the last good epoch checkpoint stays on disk). ``overwrite``
    without ``resume`` first removes every file of the old run.
    """
    cfg.validate()
    check_writable(cfg.out, folder=True)
    prepared = prepared or prepare_data(cfg)
    run_dir = cfg.run_dir(prepared.data_meta["source"])
    trainer = _Trainer(cfg, prepared, run_dir, progress)  # a bad model fails here, before the folder is touched
    with run_lock(run_dir):  # held by rank 0 for the whole job under torchrun
        if (run_dir / "final.pt").exists() and not overwrite:
            if resume:
                return _finished(run_dir, cfg)
            raise LandscapeError(f"{run_dir} already holds a finished run; pass --resume to reuse it or --overwrite "
                                 "to retrain")
        if not resume and not overwrite and _run_files(run_dir):
            raise LandscapeError(f"{run_dir} holds an unfinished run (no final.pt); pass --resume to continue it "
                                 "or --overwrite to discard it and retrain")
        if overwrite and not resume and distributed.is_main():
            for path in _run_files(run_dir):
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        distributed.barrier()
        return trainer.run(resume)


def _run_files(run_dir: Path) -> list[Path]:
    """What a run leaves in its folder: epoch files, final/best, history, config, analyses, temp files."""
    named = [run_dir / name for name in RUN_FILES if (run_dir / name).exists()]
    return [*epoch_files(run_dir), *named, *run_dir.glob(".*.tmp")]


def _finished(run_dir: Path, cfg: TrainConfig) -> TrainResult:
    _check_same_config(run_dir, cfg)
    payload = safe_torch_load(run_dir / "final.pt")
    history = read_json(run_dir / "history.json") if (run_dir / "history.json").exists() else []
    return TrainResult(run_dir, run_dir / "final.pt", run_dir / "best.pt", history, payload["metrics"],
                       payload["wall_time_s"])


def _check_same_config(run_dir: Path, cfg: TrainConfig) -> None:
    path = run_dir / "config.json"
    if not path.exists():
        return
    old = read_json(path)
    ignore = {"out", "run_name", "device", "keep", "tensorboard", "tensorboard_dir", "matched_run"}
    new = {**cfg.to_dict(), "lr": cfg.effective_lr}  # an explicit lr equal to the default is the same setting
    old["lr"] = TrainConfig.from_dict({**new, **old}).effective_lr
    diff = sorted(k for k, v in new.items() if k not in ignore and old.get(k, v) != v)
    if diff:
        raise LandscapeError(f"{run_dir} was trained with other settings ({', '.join(diff)}); use another --out or "
                             "--overwrite")


class _Trainer:
    def __init__(self, cfg: TrainConfig, prepared: Prepared, run_dir: Path, progress: bool):
        self.cfg, self.prep, self.run_dir, self.progress = cfg, prepared, run_dir, progress
        self.device = resolve_device(cfg.device)
        model, self.model_meta = build_model(cfg, len(prepared.classes))
        self.model = DataParallel.convert(model, cfg.sync_bn, self.device).to(self.device)
        self.dtype = next(self.model.parameters()).dtype
        hyper = dict(cfg.opt_args)
        if cfg.weight_decay:
            hyper["weight_decay"] = cfg.weight_decay
        self.lr = cfg.effective_lr
        params = self.model
        if cfg.no_decay_norm_bias:
            params = weight_decay_groups(self.model, hyper.pop("weight_decay", BASE_DEFAULTS[cfg.base]["weight_decay"]))
        self.opt = create_optimizer(cfg.optimizer, params, base=cfg.base, lr=self.lr, amp=cfg.amp, model=self.model,
                                    **hyper)
        self.dp = DataParallel(self.model, self.opt, cfg.sync_bn, cfg.sam_local, cfg.batch_size)
        self.loss_fn = nn.CrossEntropyLoss()
        self.history: list[dict] = []
        self.best_score = -math.inf
        self.wall = 0.0
        n_train = len(prepared.tensors["train"][1])
        self.steps_per_epoch = max(n_train // cfg.batch_size, 1)
        #: Optimizer steps of the whole run: a budget's, else every step of ``epochs`` epochs (the cap).
        self.total_steps = (self.steps_per_epoch * cfg.epochs if cfg.gradient_budget is None
                            else cfg.gradient_budget // self.opt.passes_per_step)
        #: Epochs to run (the last one partial when a budget's steps do not fill it).
        self.epochs = -(-self.total_steps // self.steps_per_epoch)
        #: Forward/backward passes over a mini-batch so far (see the module docstring).
        self.gradient_evaluations = 0
        #: Identity of this run, in config.json and every checkpoint: PCA uses only epoch files of one run.
        self.run_id: str | None = uuid.uuid4().hex[:16]
        #: Epoch of ``best.pt`` (None: not known in this process, e.g. a resume that restores no history).
        self.best_epoch: int | None = None
        #: The newest epoch file's payload without optimizer state, by file name.
        self._saved: dict[str, dict] = {}
        self.tracker = None  # opened by run(), after the run folder's checks

    # -- bookkeeping -------------------------------------------------------
    def optimizer_meta(self) -> dict:
        return {"name": self.cfg.optimizer, "base": self.cfg.base, "lr": self.lr, "schedule": self.cfg.schedule,
                "hyper": self.opt.hyper, "passes_per_step": self.opt.passes_per_step,
                "compute_matched": None if self.cfg.gradient_budget is None else {
                    "matched_to": self.cfg.matched_to, "matched_run": self.cfg.matched_run,
                    "gradient_budget": self.cfg.gradient_budget},
                "groups": self.opt.group_settings(),
                "amp": self.cfg.amp, "skipped_steps": self.opt.skipped_steps}

    def payload(self, epoch: int, metrics: dict, with_state: bool) -> dict:
        return checkpoint_payload(
            self.model, model_meta=self.model_meta, optimizer_meta=self.optimizer_meta(), data_meta=self.prep.data_meta,
            config=self.cfg.to_dict(), epoch=epoch, metrics=metrics, wall_time_s=self.wall,
            optimizer_state=self.opt.state_dict() if with_state else None, history=self.history, run_id=self.run_id,
            stopping=self.stopping(), gradient_evaluations=self.gradient_evaluations,
        )

    def target_epoch(self) -> int | None:
        """The first epoch whose ``train_eval_loss`` is at most ``stop_train_loss`` (None: none yet, or no target)."""
        target = self.cfg.stop_train_loss
        return None if target is None else next((h["epoch"] for h in self.history
                                                 if h.get("train_eval_loss", math.inf) <= target), None)

    def stopping(self) -> dict | None:
        """What ended (or will end) the run; None without ``stop_train_loss`` and ``gradient_budget``.

        ``stop_train_loss``: ``{"rule": "train_eval_loss", "target", "epoch", "reached", "cap",
        "train_eval_loss"}`` (``epoch``: the first epoch at or below the target, else the last one so far;
        ``train_eval_loss`` that epoch's value). ``gradient_budget``: ``{"rule": "gradient_budget", "budget",
        "matched_to", "matched_run", "steps", "remainder", "epoch", "reached", "cap", "target",
        "target_epoch"}``: ``steps`` of ``passes_per_step`` passes, ``remainder`` = budget - steps x passes
        (passes not taken because they make no whole step), ``reached`` once every step ran, ``cap`` the
        epochs they span; the stop rule does not stop such a run, ``target_epoch`` says where it would have.
        """
        cfg, last = self.cfg, (self.history[-1]["epoch"] if self.history else 0)
        hit = self.target_epoch()
        if cfg.gradient_budget is not None:
            passes = self.opt.passes_per_step
            return {"rule": "gradient_budget", "budget": cfg.gradient_budget, "matched_to": cfg.matched_to,
                    "matched_run": cfg.matched_run, "steps": self.total_steps,
                    "remainder": cfg.gradient_budget - self.total_steps * passes, "epoch": last,
                    "reached": last == self.epochs, "cap": self.epochs, "target": cfg.stop_train_loss,
                    "target_epoch": hit}
        if cfg.stop_train_loss is None:
            return None
        epoch = hit if hit is not None else last
        loss = next((h["train_eval_loss"] for h in self.history if h["epoch"] == epoch), None)
        return {"rule": "train_eval_loss", "target": cfg.stop_train_loss, "epoch": epoch, "reached": hit is not None,
                "cap": cfg.epochs, "train_eval_loss": loss}

    def save_epoch(self, epoch: int, full: dict) -> None:
        """Write ``full`` (the epoch's payload with optimizer state) as ``epoch_NNN.pt``.

        Only the newest epoch file keeps the optimizer state (``--resume`` reads it); the previous one is rewritten
        without it from memory.
        """
        atomic_torch_save(full, self.run_dir / f"epoch_{epoch:03d}.pt")
        stripped = {k: v for k, v in full.items() if k != "optimizer_state"}
        stripped["history"] = list(stripped["history"])  # what drop_optimizer_state would leave, as of this epoch
        if distributed.is_main():  # only rank 0 writes
            older = epoch_files(self.run_dir)[:-1]
            for f in older:
                if self.cfg.keep == "last" and f.name != "epoch_000.pt":
                    f.unlink(missing_ok=True)
            if older and older[-1].exists():
                previous = self._saved.get(older[-1].name)  # in memory: no need to read it back
                if previous is not None:
                    atomic_torch_save(previous, older[-1])
                else:
                    drop_optimizer_state(older[-1])
        self._saved = {f"epoch_{epoch:03d}.pt": stripped}
        write_json(self.run_dir / "history.json", self.history)

    def restore(self) -> int:
        """Load the newest epoch file; returns the epoch to continue after (0 if none)."""
        files = epoch_files(self.run_dir)
        if not files:
            return -1
        _check_same_config(self.run_dir, self.cfg)
        payload = safe_torch_load(files[-1])
        self.model.load_state_dict(payload["state_dict"])
        if payload.get("optimizer_state") is None:
            raise LandscapeError(f"{files[-1]} holds no optimizer state (only the newest epoch file of an unfinished "
                                 "run does); resume is not possible from it, use --overwrite")
        self.opt.load_state_dict(payload["optimizer_state"])
        self.history = list(payload.get("history", []))
        # runs from before the count: every step of every epoch with all its passes
        self.gradient_evaluations = int(payload.get("gradient_evaluations",
                                                    payload["epoch"] * self.steps_per_epoch * self.opt.passes_per_step))
        self.run_id = payload.get("run_id")  # None for runs from before run ids
        self.wall = float(payload.get("wall_time_s", 0.0))
        scores = [h["val"]["balanced_accuracy"] for h in self.history if h.get("val", {}).get("n")]
        self.best_score = max(scores, default=-math.inf)
        return int(payload["epoch"])

    # -- the loop ------------------------------------------------------------
    def run(self, resume: bool) -> TrainResult:
        with logs.run_context(self.run_dir.name):
            try:
                return self._run(resume)
            finally:
                if self.tracker is not None:
                    self.tracker.close()

    def _run(self, resume: bool) -> TrainResult:
        cfg = self.cfg
        if cfg.tensorboard and distributed.is_main():
            from landscape.train.tracking import TensorBoard, log_dir

            self.tracker = TensorBoard(log_dir(self.run_dir, cfg.tensorboard_dir))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        start = self.restore() if resume else -1
        distributed.barrier()  # every rank has read the run folder before rank 0 writes to it
        write_json(self.run_dir / "config.json", {"run_id": self.run_id, **cfg.to_dict()})
        if start < 0:
            self.save_epoch(0, self.payload(0, {}, with_state=True))
            start = 0
        x_train, y_train = self.prep.tensors["train"]
        x_val, y_val = self.prep.tensors["val"]
        epochs = self.epochs
        stops = cfg.gradient_budget is None  # a compute-matched run takes its budget whatever its loss
        with progress_bar(f"train {self.run_dir.name}", total=self.total_steps,
                          enabled=self.progress, unit="steps") as bar:
            bar.advance(min(start * self.steps_per_epoch, self.total_steps))
            for epoch in range(start + 1, epochs + 1):
                if stops and self.target_epoch() is not None:  # resumed after the target was reached
                    break
                t0 = time.perf_counter()
                steps = min(self.steps_per_epoch, self.total_steps - (epoch - 1) * self.steps_per_epoch)
                train_loss, grad_norm = self.train_epoch(epoch, x_train, y_train, bar, steps)
                self.dp.sync_buffers()
                self.check_finite(epoch)
                val = split_metrics(self.model, x_val, y_val, self.prep.classes)
                record = {"epoch": epoch, "train_loss": train_loss, "lr": self.opt.param_groups[0]["lr"], "val": val,
                          "grad_norm": grad_norm, "steps": steps, "gradient_evaluations": self.gradient_evaluations}
                if cfg.stop_train_loss is not None:  # one forward pass over the training split, eval mode
                    record["train_eval_loss"] = mean_cross_entropy(self.model, x_train, y_train)
                self.wall += time.perf_counter() - t0
                record["seconds"] = self.wall
                self.history.append(record)
                if self.tracker is not None:
                    self.tracker.epoch(record, self.opt.hyper)
                full = self.payload(epoch, {"val": val}, with_state=True)
                score = val.get("balanced_accuracy", -math.inf) if val.get("n") else -train_loss
                if score > self.best_score:  # before the epoch file, the resume point: a failed write redoes both
                    self.best_score, self.best_epoch = score, epoch
                    atomic_torch_save(best_payload(full), self.run_dir / "best.pt")
                self.save_epoch(epoch, full)
                bacc = val.get("balanced_accuracy", float("nan"))
                bar.update(loss=f"{train_loss:.4f}", val_bacc=f"{bacc:.3f}")
                bar.note(f"epoch {epoch}/{epochs}: train loss {train_loss:.4f}, val balanced accuracy {bacc:.3f}, "
                         f"{time.perf_counter() - t0:.1f} s")
        return self.finish()

    def train_epoch(self, epoch: int, x: torch.Tensor, y: torch.Tensor, bar, steps: int) -> tuple[float, float]:
        """The first ``steps`` steps of epoch ``epoch`` (all of them but in a budget's last epoch); returns the mean
        training loss and the mean L2 norm of the gradient each step applied.
        """
        cfg = self.cfg
        params = [p for p in self.model.parameters() if p.requires_grad]
        grad_sum = torch.zeros((), dtype=torch.float64, device=self.device)  # images x norm, steps applied only
        grad_images = torch.zeros((), dtype=torch.float64, device=self.device)
        gen = torch.Generator().manual_seed(epoch_seed(cfg.seed, epoch))
        torch.manual_seed(epoch_seed(cfg.seed, epoch))
        perm = torch.randperm(len(y), generator=gen)
        self.model.train()
        total, count = 0.0, 0
        for i in range(steps):
            idx = perm[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            xb, yb = x[idx], y[idx]
            if cfg.augment:
                xb = augment(xb, gen)
            n_batch = len(yb)
            xb, yb = self.dp.local(xb, yb)
            xb, yb = xb.to(self.device, self.dtype), yb.to(self.device)
            step = (epoch - 1) * self.steps_per_epoch + i
            for group, peak in zip(self.opt.param_groups, self.opt.lr_max):
                group["lr"] = lr_at(step, self.total_steps, peak, cfg.schedule)

            def closure(xb=xb, yb=yb):
                self.model.zero_grad(set_to_none=True)
                loss = self.loss_fn(self.model(xb), yb)
                self.opt.backward(loss)  # under --amp the optimizer runs this pass in autocast and scales (fp16)
                return loss

            if self.dp.active:
                closure = self.dp.closure(self.loss_fn, xb, yb, n_batch)

            def counted(closure=closure):  # one gradient evaluation per pass the optimizer runs
                self.gradient_evaluations += 1
                return closure()

            try:
                loss = float(self.opt.step(counted))
            except LandscapeError as exc:  # the optimizer refuses non-finite losses
                raise LandscapeError(f"{exc} at epoch {epoch}, step {i}: training stopped; "
                                     f"last good checkpoint: {epoch_files(self.run_dir)[-1]}") from None
            if not math.isfinite(loss):
                raise LandscapeError(f"non-finite loss ({loss}) at epoch {epoch}, step {i}: training stopped; "
                                     f"last good checkpoint: {epoch_files(self.run_dir)[-1]}")
            grads = [p.grad.detach() for p in params if p.grad is not None]
            if grads:  # a step skipped for inf/NaN gradients (fp16) applied none: it does not count
                norm = global_norm(grads).double()
                applied = torch.isfinite(norm)
                grad_sum += torch.where(applied, norm, 0.0) * n_batch
                grad_images += applied * n_batch
            total += loss * n_batch
            count += n_batch
            bar.advance(1)
        return total / max(count, 1), float(grad_sum) / max(float(grad_images), 1.0)

    def check_finite(self, epoch: int) -> None:
        """Stop before saving an epoch whose weights or buffers (e.g. BatchNorm statistics) are NaN or inf."""
        bad = nonfinite_entries(self.model.state_dict())
        if bad:
            more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
            raise LandscapeError(f"non-finite weights or buffers ({bad[0]}{more}) after epoch {epoch}: training "
                                 f"stopped (diverged; try a smaller --lr); last good checkpoint: "
                                 f"{epoch_files(self.run_dir)[-1]}")

    def finish(self) -> TrainResult:
        """Write ``final.pt`` and the full metrics of ``best.pt``: each split evaluated once per distinct weights.

        The validation metrics of an epoch's weights are already in the history
        (the same evaluation of the same weights); ``best.pt`` of the final
        epoch shares the final metrics instead of evaluating again.
        """
        epoch = self.history[-1]["epoch"] if self.history else self.epochs
        metrics = self.split_metrics(epoch)
        final = self.payload(epoch, metrics, with_state=False)
        atomic_torch_save(final, self.run_dir / "final.pt")
        if self.tracker is not None:
            self.tracker.final(metrics, epoch)
        if distributed.is_main():  # the resume point is now obsolete: final.pt holds its weights
            newest = epoch_files(self.run_dir)[-1]
            if self.cfg.keep == "last" and newest.name != "epoch_000.pt":
                newest.unlink()
            elif newest.name in self._saved:
                atomic_torch_save(self._saved[newest.name], newest)
            else:
                drop_optimizer_state(newest)
        best_path = self.run_dir / "best.pt"
        if distributed.is_main():
            if self.best_epoch == epoch:  # the same weights as final.pt (saved from the same epoch's payload)
                best = final
            else:
                best = safe_torch_load(best_path)
                self.model.load_state_dict(best["state_dict"])
                best["metrics"] = self.split_metrics(int(best["epoch"]))
            atomic_torch_save(best, best_path)
            write_json(self.run_dir / "history.json", self.history)
        distributed.barrier()  # the run's files are on disk for every rank
        return TrainResult(self.run_dir, self.run_dir / "final.pt", best_path, self.history, metrics, self.wall)

    def split_metrics(self, epoch: int) -> dict:
        """Metrics of the model's current weights (those of ``epoch``) on every split; val from the history."""
        known = {h["epoch"]: h["val"] for h in self.history if "val" in h}
        return {s: known[epoch] if s == "val" and epoch in known
                else split_metrics(self.model, *self.prep.tensors[s], self.prep.classes)
                for s in ("train", "val", "test")}
