"""The typer application: one sub-command per module in this package."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(
    name="landscape",
    help="Loss-landscape and sharpness analysis of image classifiers (breast ultrasound first).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        from landscape import __version__

        typer.echo(f"landscape {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    dist_timeout: float = typer.Option(None, "--dist-timeout", show_default="30, or $LANDSCAPE_DIST_TIMEOUT",
                                       help="Under torchrun: minutes the process group and every collective may wait."),
    cache_dir: Path = typer.Option(None, "--cache-dir", show_default="$LANDSCAPE_CACHE, else ~/.cache/landscape",
                                   help="Folder of the decoded-data cache (decoded images, near-duplicate groups)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Decode the data again; read and write no cache."),
) -> None:
    """Loss-landscape and sharpness analysis of image classifiers (breast ultrasound first).

    Without --data every command uses the built-in synthetic phantom; its results are labelled 'phantom'.
    Decoded images are cached (--cache-dir, --no-cache go before the command):
    landscape --no-cache train --data ../busi
    Under torchrun every command runs distributed (see README, "Scaling out"):
    torchrun --nproc-per-node 2 --no-python landscape hessian RUN
    """
    from landscape import distributed
    from landscape.cli.render import console
    from landscape.data.cachedir import configure
    from landscape.errors import LandscapeError
    from landscape.io import check_writable

    if cache_dir is not None and not no_cache:
        try:
            check_writable(cache_dir, folder=True)
        except LandscapeError as exc:
            raise LandscapeError(f"--cache-dir: {exc}") from None
    configure(cache_dir, enabled=not no_cache)
    distributed.init(dist_timeout)
    console.quiet = not distributed.is_main()  # only rank 0 prints tables and 'saved' lines


def register() -> typer.Typer:
    """Import every command module (each adds itself to ``app``) and return the app."""
    # Each import registers its commands on ``app`` as a side effect.
    from landscape.cli import (  # noqa: F401  # noqa: F401
        correlate_cmd,
        data_cmd,
        evaluate_cmd,
        hessian_cmd,
        list_cmd,
        measures_cmd,
        report_cmd,
        sharpness_cmd,
        study_cmd,
        surface_cmd,
        train_cmd,
    )

    return app
