"""What a measure's ``compute`` gets: the checkpoint, its settings, and shared, lazily built inputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import torch

from landscape.errors import LandscapeError
from landscape.io import read_json
from landscape.measures import norms
from landscape.measures.fold import Folded, fold_batchnorm


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

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one training image as the model takes it (no batch dimension)."""
        return tuple(self.train_data[0].shape[1:])

    @property
    def model_name(self) -> str:
        """The registry name of the checkpoint's model (its class name when the metadata has none)."""
        return (self.ck.meta.get("model") or {}).get("name") or type(self.model).__name__

    @cached_property
    def folded(self) -> Folded:
        """The model with eval-mode BatchNorm folded into the preceding layers, logits checked (see measures.fold)."""
        return fold_batchnorm(self.model, input_shape=self.input_shape, name=self.model_name)

    @cached_property
    def folded_init(self) -> Folded:
        """The initial weights (``epoch_000.pt``), folded and checked the same way."""
        return fold_batchnorm(self.model, self.init_state, input_shape=self.input_shape,
                              name=f"{self.model_name} (initial weights)")

    def weights(self, init: bool = False) -> torch.Tensor:
        """Layer weights of the folded network (or of the folded initial network) as one float64 vector."""
        return norms.flat_weights((self.folded_init if init else self.folded).model)

    @cached_property
    def spectral(self) -> dict:
        """:func:`landscape.measures.norms.spectral_measures` of the folded network (shared by two groups)."""
        return norms.spectral_measures(self.folded.model)

    @cached_property
    def path_norm(self) -> float:
        """Jiang's path norm of the folded network (output units; shared by two groups)."""
        return norms.path_norm(self.folded.model, self.input_shape)

    @cached_property
    def train_logits(self) -> torch.Tensor:
        """Logits of :attr:`train_data` (model in eval mode; shared by the output and margin groups)."""
        from landscape.train.evaluate import predict

        return predict(self.model, self.train_data[0])

    @cached_property
    def history(self) -> list[dict]:
        path = self.ck.run_dir / "history.json"
        return read_json(path) if path.is_file() else []
