"""Validators shared by every layer, so that one option is checked the same way everywhere."""

from __future__ import annotations

import sys

from landscape.errors import LandscapeError

#: Seeds are integers in ``[0, SEED_LIMIT)``: what ``numpy.random.seed`` accepts, and small enough
#: that ``seed * 1_000_003 + epoch`` (per-epoch seeds) stays inside torch's 64-bit seed range.
SEED_LIMIT = 2**32


def _is_integer(value) -> bool:
    """Whether ``value`` is a Python or numpy integer (not a bool); never imports numpy.

    A numpy integer implies numpy is loaded, so it is looked up in ``sys.modules``.
    """
    np = sys.modules.get("numpy")
    return not isinstance(value, bool) and isinstance(value, (int, np.integer) if np is not None else int)


def check_seed(seed, name: str = "seed") -> int:
    """``seed`` as an int, or :class:`LandscapeError` unless it is an integer in ``[0, 2**32)``.

    ``name`` is the parameter (or expression of parameters) the message names;
    the CLI shows each parameter as its flag.
    """
    if not _is_integer(seed) or not 0 <= seed < SEED_LIMIT:
        raise LandscapeError(f"{name} must be an integer from 0 to 2**32 - 1, got {seed!r}",
                             params=tuple(part for part in name.split() if part.isidentifier()))
    return int(seed)


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``, else :class:`LandscapeError` naming ``name``."""
    if not _is_integer(value) or value < minimum:
        raise LandscapeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
