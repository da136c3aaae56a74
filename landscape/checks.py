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


def check_finite(value, name: str):
    """``value`` unchanged, or :class:`LandscapeError` naming ``name`` when it is a NaN or infinite float.

    Every float option goes through it, so ``--lr inf`` is refused before any
    work instead of failing at the first step.
    """
    import numpy as np

    try:
        finite = isinstance(value, bool) or np.isfinite(value).all()
    except TypeError:  # not a number: the caller's own type check words it
        return value
    if not finite:
        raise LandscapeError(f"{name} must be a finite number, got {value!r}", params=(name,))
    return value


def check_unique(names, name: str) -> None:
    """:class:`LandscapeError` naming the first repeated entry of ``names`` (each would be one run folder)."""
    seen = set()
    for item in names:
        if item in seen:
            raise LandscapeError(f"{name} lists {item!r} twice; give each once", params=(name,))
        seen.add(item)


def check_positive(value, name: str) -> float:
    """``value`` as a float, or :class:`LandscapeError` unless it is a finite number > 0."""
    import numpy as np

    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise LandscapeError(f"{name} must be a number > 0, got {value!r}", params=(name,))
    check_finite(value, name)
    if value <= 0:
        raise LandscapeError(f"{name} must be > 0, got {value!r}", params=(name,))
    return float(value)


#: A schema for JSON data (see :func:`schema_problem`): any real number.
NUMBER = (int, float)


def schema_problem(value, schema, where: str = "") -> str | None:
    """The first way ``value`` (parsed JSON) breaks ``schema``, worded with its path; None when it fits.

    ``schema`` is a type (``float`` also takes an int; ``bool`` fits only
    ``bool``), ``None`` (JSON null), a dict of key -> schema (the value must
    be a dict with those keys; a key ending in ``?`` may be absent; the
    schema of key ``*`` applies to every other key of the value), a
    one-item list ``[item]`` (a list whose items fit ``item``), or a tuple of
    alternatives, one of which must fit.
    """
    here = where or "the top level"
    if isinstance(schema, tuple):
        problems = [schema_problem(value, alt, where) for alt in schema]
        return None if any(p is None for p in problems) else next(p for p in problems if p)
    if schema is None:
        return None if value is None else f"{here} is {type(value).__name__}, not null"
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return f"{here} is {type(value).__name__}, not a dict"
        rest = schema.get("*")
        extra = {} if rest is None else {k: rest for k in value if k not in schema and f"{k}?" not in schema}
        for key, sub in {**schema, **extra}.items():
            if key == "*":
                continue
            name = key.removesuffix("?")
            if name not in value:
                if key.endswith("?"):
                    continue
                return f"{where + '.' if where else ''}{name} is missing"
            problem = schema_problem(value[name], sub, f"{where + '.' if where else ''}{name}")
            if problem:
                return problem
        return None
    if isinstance(schema, list):
        if not isinstance(value, list):
            return f"{here} is {type(value).__name__}, not a list"
        for i, item in enumerate(value):
            problem = schema_problem(item, schema[0], f"{where}[{i}]")
            if problem:
                return problem
        return None
    accepted = (int, float) if schema is float else (schema,)
    if isinstance(value, bool) and schema is not bool or not isinstance(value, accepted):
        return f"{here} is {type(value).__name__}, not {schema.__name__}"
    return None


def gib(nbytes: float) -> str:
    """``nbytes`` in GiB (or MiB below 1 GiB), for messages."""
    return f"{nbytes / 2**30:.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.3g} MiB"


def available_memory(device=None) -> int:
    """Bytes a new allocation may take on ``device``: free memory of a CUDA device, else the host's available RAM."""
    import torch

    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # not Linux
        pass
    import os

    try:  # macOS has no SC_AVPHYS_PAGES: a quarter of physical memory there
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4)
    except (ValueError, OSError, AttributeError):
        return 0


def check_memory(need: float, what: str, budget_memory: float | None = None, device=None,
                 params: tuple[str, ...] = ()) -> None:
    """:class:`LandscapeError` before work when ``what`` needs more than ``budget_memory`` GiB (default: available).

    ``need`` is in bytes; the message gives both amounts; ``params``: the parameters ``what`` names.
    """
    if budget_memory is not None:
        limit, whose = check_positive(budget_memory, "budget_memory") * 2**30, "of budget_memory"
    else:
        limit, whose = available_memory(device), "available"
    if need > limit:
        raise LandscapeError(f"{what} needs {gib(need)}, more than the {gib(limit)} {whose}; ask for less "
                             "(or raise budget_memory)", params=("budget_memory", *params))
