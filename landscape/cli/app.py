"""The typer application: one sub-command per module in this package."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="landscape",
    help="Loss-landscape and sharpness analysis of image classifiers (breast ultrasound first).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def register() -> typer.Typer:
    """Import every command module (each adds itself to ``app``) and return the app."""
    # Each import registers its commands on ``app`` as a side effect.
    from landscape.cli import data_cmd, hessian_cmd, report_cmd, sharpness_cmd, study_cmd, surface_cmd, train_cmd  # noqa: F401

    return app
