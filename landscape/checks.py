"""Validators shared by every layer, so that one option is checked the same way everywhere."""

from __future__ import annotations

import sys

from landscape.errors import LandscapeError

#: Seeds are integers in ``[0, SEED_LIMIT)``: what ``numpy.random.seed`` accepts, and small enough
#: that ``seed * 1_000_003 + epoch`` (per-epoch seeds) stays inside torch's 64-bit seed range.
SEED_LIMIT = 2**32


def check_seed(seed, name: str = "seed") -> int:
    """``seed`` as an int, or :class:`LandscapeError` unless it is an integer in ``[0, 2**32)``.

    ``name`` is the parameter (or expression of parameters) the message names;
    the CLI shows each parameter as its flag.
    """
    np = sys.modules.get("numpy")  # a numpy integer implies numpy is loaded: never import it here
    integer = (int, np.integer) if np is not None else int
    if isinstance(seed, bool) or not isinstance(seed, integer) or not 0 <= seed < SEED_LIMIT:
        raise LandscapeError(f"{name} must be an integer from 0 to 2**32 - 1, got {seed!r}",
                             params=tuple(part for part in name.split() if part.isidentifier()))
    return int(seed)


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``, else :class:`LandscapeError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise LandscapeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
