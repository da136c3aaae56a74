"""Checks a study runs before its first training run, so a typo never costs a finished run."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from landscape.errors import LandscapeError


def check_models(models: Sequence[str], img_size: int, num_classes: int = 2) -> None:
    """Build every model once on the meta device (no memory, no weights): unknown names and
    architectures that cannot take ``img_size`` inputs raise :class:`LandscapeError` here.
    """
    from landscape.models import create

    for name in models:
        try:
            with torch.device("meta"):
                create(name, num_classes=num_classes, in_chans=1, img_size=img_size)
        except LandscapeError as exc:
            raise LandscapeError(f"models {name}: {exc}", params=("models", *exc.params)) from None
