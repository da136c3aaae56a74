"""`landscape correlate` computes the measure records it needs, as `landscape report` does, or refuses."""

from __future__ import annotations

import dataclasses
import json

import pytest


@pytest.fixture
def quick(quick_analyses, monkeypatch):
    """The analyses at `study --quick` settings, the measures suite cut to three: a test-sized run."""
    from landscape.analysis import registry

    spec = registry._REGISTRY["measures"]
    monkeypatch.setitem(registry._REGISTRY, "measures", dataclasses.replace(
        spec, report_defaults={**spec.report_defaults, "measures": ["dist_init", "path_norm", "num_params"]}))


def _records(runs):
    return sorted(f.name.split("-")[0] for r in runs for f in (r / "analysis").glob("*.json"))


def test_correlate_computes_the_measure_records_it_lacks(bare_runs, tmp_path, cli, quick):
    res = cli("correlate", *bare_runs, "--json", tmp_path / "c.json")
    assert res.code == 0, res.err
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["n_runs"] == 2
    for m in ("lambda_max", "hessian_trace", "sharpness_worst", "sharpness_adaptive_worst", "dist_init", "path_norm"):
        assert m in data["measures"] and all(r["measures"][m] is not None for r in data["rows"]), m
    # records of every analysis that holds measures, cached in each run; no surface (it is no measure)
    assert _records(bare_runs) == sorted(["hessian", "measures", "sharpness", "sharpness"] * 2)
    assert "report plan: 2 runs x 8 missing analyses" in " ".join(res.err.split())
    again = cli("correlate", *bare_runs, "--json", tmp_path / "d.json", "--no-compute")  # now all cached
    assert again.code == 0, again.err
    assert json.loads((tmp_path / "d.json").read_text())["measures"] == data["measures"]


def test_no_compute_refuses_naming_the_commands_to_run(bare_runs, tmp_path, cli):
    res = cli("correlate", *bare_runs, "--json", tmp_path / "c.json", "--no-compute")
    assert res.code == 2
    lines = [line for line in res.err.splitlines() if line.strip()]
    assert len([line for line in lines if line.startswith("error:")]) == 1
    error = next(line for line in lines if line.startswith("error:"))
    assert "2 of 2 runs lack records that correlate needs" in error
    for command in ("landscape measures RUN", "landscape hessian RUN --density", "landscape sharpness RUN",
                    "landscape sharpness RUN --adaptive"):
        assert f"`{command}` for {bare_runs[0].name}, {bare_runs[1].name}" in error
    assert not (tmp_path / "c.json").exists()
    assert all(not (r / "analysis").exists() or not any((r / "analysis").iterdir()) for r in bare_runs)


def test_no_compute_names_only_what_is_missing(bare_runs, tmp_path, cli):
    from landscape.analysis.measures import analyze

    analyze(bare_runs[0], measures=["dist_init"], progress=False, device="cpu")
    res = cli("correlate", *bare_runs, "--json", tmp_path / "c.json", "--no-compute")
    error = next(line for line in res.err.splitlines() if line.startswith("error:"))
    assert res.code == 2 and f"`landscape measures RUN` for {bare_runs[1].name};" in error
