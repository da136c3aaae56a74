"""Engine packages that are also callable as their checkpoint-level driver.

``landscape.sharpness`` and ``landscape.surface`` are pure math (a model, a
loss, data); the checkpoint-level functions live in :mod:`landscape.analysis`.
So that ``landscape.sharpness(ck, ...)`` works and ``landscape.sharpness`` stays
the package, the package's module object is made callable: calling it (or
reading its ``analyze`` attribute) imports the driver only then, so importing
the engine never loads ``checkpoint``, ``train`` or ``report``.
"""

from __future__ import annotations

import importlib
import sys
import types


class DriverModule(types.ModuleType):
    """A package module whose call runs ``analyze`` of the driver module named by ``__driver__``."""

    def __call__(self, *args, **kwargs):
        """Run the checkpoint-level driver, e.g. ``landscape.sharpness(ck, rhos=[0.05])``."""
        return self.analyze(*args, **kwargs)

    def __getattr__(self, name: str):
        if name == "analyze":  # the checkpoint-level driver, kept under its old name
            return importlib.import_module(self.__dict__["__driver__"]).analyze
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")


def make_callable(module_name: str, driver: str) -> None:
    """Make package ``module_name`` callable as ``driver.analyze`` (imported on first use)."""
    module = sys.modules[module_name]
    module.__driver__ = driver
    module.__class__ = DriverModule
