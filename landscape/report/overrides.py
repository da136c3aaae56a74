"""Settings of the analyses a report or study runs, checked before any work starts.

``analyses`` maps a registered analysis name (:func:`~landscape.analysis.list_analyses`)
to keyword arguments of its analyzer, ``{ANALYSIS: {KEY: VALUE}}``; the CLI spells
them ``--set ANALYSIS.KEY=VALUE``. The report option ``m``
(the m-sharpness sub-batch size) goes, used as given, to every analyzer that
takes an ``m``; without it each spec's ``adapt`` fits its settings to the run.
"""

from __future__ import annotations

import inspect

from landscape.errors import LandscapeError

#: Arguments that the report or study sets itself.
RESERVED = {"ck", "seed", "progress", "device", "data_root", "json_path", "plot_path", "out_dir"}


def analyzer(name: str):
    """The driver behind registered analysis ``name`` (its spec's ``compute``)."""
    from landscape.analysis import get_analysis

    return get_analysis(name).compute


def check_overrides(analyses: dict[str, dict] | None, m: int | None = None) -> dict[str, dict]:
    """LandscapeError for an unknown analysis, an argument its analyzer does not take, a value it
    rejects, or a bad ``m``; returns a copy of ``analyses``. Loads and computes nothing.
    """
    from landscape.analysis import get_analysis, list_analyses

    if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 1):
        raise LandscapeError(f"m must be a positive integer (the m-sharpness sub-batch size), got {m!r}")
    out = {}
    for name, kwargs in (analyses or {}).items():
        if name not in list_analyses():
            raise LandscapeError(f"analyses {name!r}: no such analysis; use one of {', '.join(list_analyses())}",
                                 params=("analyses",))
        takes = set(inspect.signature(analyzer(name)).parameters) - RESERVED
        for key in kwargs:
            if key not in takes:
                raise LandscapeError(f"analyses {name}.{key}: the {name} analysis has no setting {key!r}; "
                                     f"use one of {', '.join(sorted(takes))}", params=("analyses",))
        out[name] = dict(kwargs)
        _check_values(name, {**get_analysis(name).report_defaults, **kwargs,
                             **({"m": m} if m is not None and "m" in takes else {})})
    return out


def _check_values(name: str, kwargs: dict) -> None:
    """Run the analyzer's own argument checks, which all come before it loads its checkpoint:
    called on a path that does not exist, valid settings end in 'checkpoint not found'.
    """
    probe = "<settings check: no checkpoint>"
    try:
        analyzer(name)(probe, **kwargs, progress=False)
    except LandscapeError as exc:
        if probe not in str(exc):
            raise LandscapeError(f"analyses {name}: {exc}", params=("analyses", *exc.params)) from None
    except (TypeError, ValueError) as exc:
        raise LandscapeError(f"analyses {name}: bad value ({exc})", params=("analyses",)) from None


def parse_set(pairs: list[str], parse_value) -> dict[str, dict]:
    """``["A.samples=256", "B.grid=11"]`` -> ``{"A": {"samples": 256}, "B": {"grid": 11}}``."""
    out: dict[str, dict] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        name, dot, arg = key.strip().partition(".")
        if not sep or not dot or not name or not arg:
            raise LandscapeError(f"--set takes ANALYSIS.KEY=VALUE (e.g. sharpness.samples=256), got {pair!r}")
        out.setdefault(name, {})[arg.replace("-", "_")] = parse_value(value.strip())
    return out
