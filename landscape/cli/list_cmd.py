"""``landscape list optimizers|models|analyses``: what each registry holds."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from landscape.cli.app import app
from landscape.cli.render import print_table, saved
from landscape.errors import LandscapeError
from landscape.io import write_json

REGISTRIES = ("optimizers", "models", "analyses")


@app.command("list")
def list_command(
    registry: str = typer.Argument(..., metavar="optimizers|models|analyses", help="Which registry to print."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write the rows to this JSON file."),
) -> None:
    """Print a registry: the optimizers, the built-in models or the analyses the report and the study run.

    Optimizers, models and analyses registered from Python
    (landscape.optim.register_optimizer, landscape.models.register_model,
    landscape.analysis.register_analysis) appear here in the same process.

    Examples:
      landscape list optimizers

      landscape list analyses --json analyses.json

    """
    if registry not in REGISTRIES:
        raise LandscapeError(f"registry must be one of {', '.join(REGISTRIES)}, got {registry!r}")
    if registry == "optimizers":
        from landscape.optim.registry import optimizer_rows

        rows = optimizer_rows()
        print_table("optimizers (landscape.optim)", ["name", "passes/step", "hyper-parameters", "description"],
                    [[r["name"], r["passes"], ", ".join(f"{k}={v}" for k, v in r["hyper"].items()) or "-",
                      r["description"]] for r in rows])
    elif registry == "models":
        from landscape.models import list_models

        rows = [{"name": n, "source": "registered"} for n in list_models()]
        print_table("models (landscape.models; any timm model name works too)", ["name", "source"],
                    [[r["name"], r["source"]] for r in rows])
    else:
        from landscape.analysis import get_analysis, list_analyses

        specs = [get_analysis(n) for n in list_analyses()]
        rows = [{"name": s.name, "kind": s.kind, "provides": list(s.provides), "columns": list(s.columns),
                 "stage": s.stage, "report_defaults": s.report_defaults, "quick_defaults": s.quick_defaults,
                 "description": s.description} for s in specs]
        print_table("analyses (landscape.analysis)", ["name", "record kind", "provides", "runs-table columns",
                                                      "description"],
                    [[r["name"], r["kind"], ", ".join(r["provides"]), ", ".join(r["columns"]) or "-",
                      r["description"]] for r in rows])
    if json_path is not None:
        write_json(json_path, rows)
        saved("json", json_path)
