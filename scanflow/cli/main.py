"""Entry point of the ``scanflow`` command: one Typer app, command groups in sibling modules.

Each module ``scanflow.cli.<group>`` exposes ``register(app)``; errors derived from
:class:`~scanflow.errors.ScanflowError` are printed without a traceback.
"""

from __future__ import annotations

import importlib
import sys

import typer

from scanflow.errors import ScanflowError

COMMAND_MODULES = [
    "project",
    "runs",
    "tracker",
    "serve",
    "agents",
    "models",
    "build",
    "deploy",
    "server",
    "notebook",
    "score",
    "tune",
    "schedule",
]

app = typer.Typer(
    name="scanflow",
    help="Scanflow: declare an ML application once; build, run, track, serve and supervise it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(f"scanflow.cli.{name}").register(app)


@app.callback()
def _options(
    ctx: typer.Context,
    app_dir: str = typer.Option(
        ".",
        "--app",
        "-a",
        envvar="SCANFLOW_APP_DIR",
        help="Folder of the application (holds scanflow.yaml).",
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what happens in detail."),
) -> None:
    """Options shared by every command."""
    import logging

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    ctx.obj = {"app_dir": app_dir}


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (ScanflowError -> message on stderr, non-zero)."""
    from scanflow.cli.output import err_console

    try:
        result = app(args=argv, standalone_mode=False)
    except ScanflowError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        if isinstance(exc, click.exceptions.Abort):
            return 1
        raise
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
