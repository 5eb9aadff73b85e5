"""``scanflow tune WORKFLOW`` runs a tuning study; ``scanflow tune show`` prints its
leaderboard and best trial; ``scanflow tune register`` registers the best trial's model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from scanflow.cli import context
from scanflow.cli.output import console, err_console

if TYPE_CHECKING:
    from scanflow.spec.loader import Project
    from scanflow.spec.model import Study


def register(app: typer.Typer) -> None:
    """Add the ``tune`` command."""
    app.command("tune")(tune)


def _chosen(project: Project, named: str | None, study: str | None) -> Study:
    """The study ``--study`` names, or the one ``named`` names (a study or its workflow)."""
    from scanflow.tuning.study import find_study

    if study is None and named is not None and named in {s.name for s in project.app.tuning}:
        return find_study(project, None, named)
    return find_study(project, named, study)


def tune(
    ctx: typer.Context,
    workflow: Annotated[
        str,
        typer.Argument(
            help="The workflow to tune, 'show' for the leaderboard or 'register' to register "
            "the best trial's model."
        ),
    ],
    shown: Annotated[
        str | None,
        typer.Argument(help="With 'show' or 'register': the study (or its workflow)."),
    ] = None,
    study: Annotated[str | None, typer.Option("--study", help="The study's name.")] = None,
    trials: Annotated[
        int | None, typer.Option("--trials", min=1, help="Trials in total (default max_trials).")
    ] = None,
    more: Annotated[
        int | None, typer.Option("--more", min=1, help="Add N trials to a study that ran.")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue a study that ran (or was killed).")
    ] = False,
    target: Annotated[str | None, typer.Option("--target", help="Engine running trials.")] = None,
    plots: Annotated[
        str | None,
        typer.Option("--plots", help="With 'show': save PNG plots in this folder (and to MLflow)."),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="With 'register': the registered model's name.")
    ] = None,
    alias: Annotated[
        str | None, typer.Option("--alias", help="With 'register': point this alias at it.")
    ] = None,
    trial: Annotated[
        int | None,
        typer.Option("--trial", min=0, help="With 'register': this trial instead of the best."),
    ] = None,
    artifact: Annotated[
        str | None,
        typer.Option("--artifact", help="With 'register': the logged model's name, if several."),
    ] = None,
) -> None:
    """Tune WORKFLOW's parameters with its study under 'tuning:'; each trial is a run."""
    from scanflow.tuning.leaderboard import render
    from scanflow.tuning.study import Tuner, load

    project = context.project(ctx)
    if workflow == "show":
        spec = _chosen(project, shown, study)
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
    if workflow == "register":
        from scanflow.tuning.register import register_best

        if model is None:
            raise typer.BadParameter("give the registered model's name", param_hint="--model")
        spec = _chosen(project, shown, study)
        done = register_best(project, spec, load(project, spec), model, alias, trial, artifact)
        aliased = f" (alias {done.alias})" if done.alias else ""
        console.print(
            f"registered trial {done.trial} (run {done.run_id}) of study {spec.name} as "
            f"{done.name} version {done.version}{aliased}",
            highlight=False,
        )
        return
    spec = _chosen(project, workflow, study)
    tuner = Tuner(project, spec, target=target)
    try:
        result = tuner.run(trials=trials, resume=resume, more=more)
    finally:  # a failed study's warnings (e.g. trials capped to the cores) explain it too
        for warning in tuner.warnings:
            err_console.print(f"[yellow]warning:[/] {warning}")
    console.print(render(result, spec), highlight=False)
