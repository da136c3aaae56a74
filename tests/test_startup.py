"""Start-up cost: ``--help`` loads neither torch nor timm, versions come from package metadata."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from landscape.errors import LandscapeError
from landscape.optim.registry import _REGISTRY, OptimSpec, register_optimizer

PROBE = """
import json, sys
import typer
from landscape.cli import main
from landscape.cli.app import register

def walk(command, path):
    yield path
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from walk(sub, [*path, name])

paths = list(walk(typer.main.get_command(register()), []))
codes = {" ".join(path): main([*path, "--help"]) for path in paths}
print(json.dumps({"codes": codes,
                  "loaded": sorted(m for m in ("torch", "timm", "sklearn", "scipy") if m in sys.modules)}))
"""


def test_help_of_every_command_imports_neither_torch_nor_timm():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=300)
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"", "train", "study", "surface", "hessian", "data", "data inspect"} <= set(probe["codes"])
    assert set(probe["codes"].values()) == {0}
    assert probe["loaded"] == []


def test_versions_come_from_metadata_without_importing_timm_or_sklearn():
    code = ("import json, sys, importlib.metadata as m; from landscape.io import versions; v = versions(); "
            "print(json.dumps([v['timm'], m.version('timm'), v['sklearn'], m.version('scikit-learn'), "
            "'timm' in sys.modules, 'sklearn' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    timm, timm_meta, sk, sk_meta, timm_loaded, sk_loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert timm == timm_meta and sk == sk_meta and timm and sk
    assert not timm_loaded and not sk_loaded


def test_named_optimizer_class_is_checked_on_first_use():
    spec = register_optimizer(OptimSpec("lazysam-bad", "landscape.optim.sam:SAM", {"rho": 0.1}, 3, "wrong passes"))
    try:
        with pytest.raises(LandscapeError, match="passes=3 but SAM.passes_per_step=2"):
            spec.optimizer_class()
        with pytest.raises(LandscapeError, match="'module:Class'"):
            register_optimizer(OptimSpec("lazysam-bad", "landscape.optim.sam.SAM", {}, 2, "no colon"),
                               overwrite=True)
    finally:
        _REGISTRY.pop("lazysam-bad", None)
