"""``scanflow tune WORKFLOW`` runs a tuning study; ``scanflow tune show`` prints its
leaderboard and best trial."""

from __future__ import annotations

from typing import Annotated

import typer

from scanflow.cli import context
from scanflow.cli.output import console, err_console


def register(app: typer.Typer) -> None:
    """Add the ``tune`` command."""
    app.command("tune")(tune)


def tune(
    ctx: typer.Context,
    workflow: Annotated[
        str, typer.Argument(help="The workflow to tune, or 'show' for the leaderboard.")
    ],
    shown: Annotated[
        str | None, typer.Argument(help="With 'show': the workflow whose study to show.")
    ] = None,
    study: Annotated[str | None, typer.Option("--study", help="The study's name.")] = None,
    trials: Annotated[
        int | None, typer.Option("--trials", min=1, help="Trials in total (default max_trials).")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue a study that ran (or was killed).")
    ] = False,
    target: Annotated[str | None, typer.Option("--target", help="Engine running trials.")] = None,
    plots: Annotated[
        str | None,
        typer.Option("--plots", help="With 'show': save PNG plots in this folder (and to MLflow)."),
    ] = None,
) -> None:
    """Tune WORKFLOW's parameters with its study under 'tuning:'; each trial is a run."""
    from scanflow.tuning.leaderboard import render
    from scanflow.tuning.study import Tuner, find_study, load

    project = context.project(ctx)
    if workflow == "show":
        spec = find_study(project, shown, study)
        result = load(project, spec)
        console.print(render(result, spec), highlight=False)
        if plots is not None:
            from pathlib import Path

            from scanflow.tuning.plots import save_plots
            from scanflow.tuning.study import log_plots

            saved = save_plots(result, spec, Path(plots))
            log_plots(project, result, Path(plots))
            console.print("plots: " + ", ".join(str(p) for p in saved), highlight=False)
        return
    spec = find_study(project, workflow, study)
    tuner = Tuner(project, spec, target=target)
    result = tuner.run(trials=trials, resume=resume)
    for warning in tuner.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}")
    console.print(render(result, spec), highlight=False)
