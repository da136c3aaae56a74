"""The typer application: one sub-command per module in this package."""

from __future__ import annotations

from pathlib import Path

import typer

from landscape.errors import LandscapeError

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
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Results only: no progress bars, plan or progress lines."),
    verbose: bool = typer.Option(False, "--verbose", "-v",
                                 help="Progress lines even in a terminal, and debug messages."),
) -> None:
    """Loss-landscape and sharpness analysis of image classifiers (breast ultrasound first).

    Without --data every command uses the built-in synthetic phantom; its results are labelled 'phantom'.
    Decoded images are cached (--cache-dir, --no-cache go before the command):
    landscape --no-cache train --data ../busi
    With stdout redirected to a file, long work prints timestamped progress lines naming their run
    (--quiet: none; --verbose: also in a terminal); -q/-v may follow the command name too.
    Under torchrun every command runs distributed (see README, "Scaling out"):
    torchrun --nproc-per-node 2 --no-python landscape hessian RUN
    """
    from landscape import distributed, logs
    from landscape.cli.render import console, fit_width
    from landscape.data.cachedir import configure
    from landscape.io import check_writable

    if quiet and verbose:
        raise LandscapeError("--quiet and --verbose exclude each other")
    if cache_dir is not None and not no_cache:
        try:
            check_writable(cache_dir, folder=True)
        except LandscapeError as exc:
            raise LandscapeError(f"--cache-dir: {exc}") from None
    configure(cache_dir, enabled=not no_cache)
    distributed.init(dist_timeout)
    logs.setup(-1 if quiet or not distributed.is_main() else int(verbose))  # progress lines from rank 0 only
    console.quiet = not distributed.is_main()  # only rank 0 prints tables and 'saved' lines
    fit_width(console)


def register() -> typer.Typer:
    """Import every command module (each adds itself to ``app``) and return the app."""
    # Each import registers its commands on ``app`` as a side effect.
    from landscape.cli import (  # noqa: F401  # noqa: F401
        compare_cmd,
        correlate_cmd,
        data_cmd,
        evaluate_cmd,
        export_cmd,
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
