"""What a measure's ``compute`` gets: the checkpoint, its settings, and shared, lazily built inputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import torch

from landscape.errors import LandscapeError
from landscape.io import read_json


@dataclass
class MeasureContext:
    """A loaded checkpoint plus the settings of one ``measures`` analysis.

    ``settings`` holds ``samples`` (training images for data-dependent
    measures), ``ggn_samples``, ``seed`` and the PAC-Bayes search settings.
    """

    ck: object
    settings: dict
    progress: object = None  # callable advancing the progress bar, or None
    details: dict = field(default_factory=dict)

    @property
    def model(self):
        return self.ck.model

    def subset(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` seeded training images (all when fewer), sorted by index so the order is stable."""
        x, y = self.ck.tensors("train")
        if n < len(y):
            gen = torch.Generator().manual_seed(self.settings["seed"])
            idx = torch.randperm(len(y), generator=gen)[:n].sort().values
            x, y = x[idx], y[idx]
        return x, y

    @cached_property
    def train_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.subset(self.settings["samples"])

    @property
    def n_train(self) -> int:
        """Training images of the run (``m`` in the PAC-Bayes bounds)."""
        return len(self.ck.meta["data"]["split"]["train"])

    @cached_property
    def init_state(self) -> dict[str, torch.Tensor]:
        """The run's initial weights (``epoch_000.pt``)."""
        path = self.ck.run_dir / "epoch_000.pt"
        if not path.is_file():
            raise LandscapeError(f"{self.ck.run_dir} has no epoch_000.pt (initial weights), "
                                 "needed for distances to init")
        return self.ck.load_weights(path)

    def flat(self, state: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Trainable parameters (of the model, or of ``state``) as one float64 vector, in model order."""
        names = [n for n, _ in self.model.named_parameters()]
        src = dict(self.model.named_parameters()) if state is None else state
        return torch.cat([src[n].detach().reshape(-1).double().cpu() for n in names])

    @cached_property
    def history(self) -> list[dict]:
        path = self.ck.run_dir / "history.json"
        return read_json(path) if path.is_file() else []
