"""What a measure's ``compute`` gets: the checkpoint, its settings, and shared, lazily built inputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import torch

from landscape.errors import LandscapeError
from landscape.io import read_json
from landscape.measures.fold import Folded, fold_batchnorm
from landscape.measures.norms import flat_weights


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

    @cached_property
    def folded(self) -> Folded:
        """The model with eval-mode BatchNorm folded into the preceding layers (a copy; see measures.fold)."""
        return fold_batchnorm(self.model)

    @cached_property
    def folded_init(self) -> Folded:
        """The initial weights (``epoch_000.pt``), folded the same way."""
        return fold_batchnorm(self.model, self.init_state)

    def weights(self, init: bool = False) -> torch.Tensor:
        """Layer weights of the folded network (or of the folded initial network) as one float64 vector."""
        return flat_weights((self.folded_init if init else self.folded).model)

    @cached_property
    def history(self) -> list[dict]:
        path = self.ck.run_dir / "history.json"
        return read_json(path) if path.is_file() else []
