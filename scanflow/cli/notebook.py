"""``scanflow notebook convert``: a tagged notebook becomes step scripts and a workflow."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from scanflow.cli import context
from scanflow.cli.output import console

if TYPE_CHECKING:
    from scanflow.notebook import Conversion


def register(app: typer.Typer) -> None:
    """Add the ``notebook`` command group to ``app``."""
    group = typer.Typer(help="Turn tagged Jupyter notebooks into workflows.", no_args_is_help=True)
    app.add_typer(group, name="notebook")

    @group.command("convert")
    def convert(
        ctx: typer.Context,
        notebook: Path = typer.Argument(..., help="The tagged notebook (.ipynb)."),
        workflow: str | None = typer.Option(
            None, "--workflow", "-w", help="Workflow name (default: from the file name)."
        ),
        steps_dir: str | None = typer.Option(
            None, "--steps-dir", help="Where step scripts go (default: steps/WORKFLOW)."
        ),
        run: bool = typer.Option(False, "--run", help="Then run the workflow (local engine)."),
        verify: bool = typer.Option(
            False,
            "--verify",
            help="Then run the notebook and the workflow and compare the values they make.",
        ),
        timeout: float = typer.Option(600.0, help="Seconds one notebook cell may run (--verify)."),
    ) -> None:
        """Write one script per step and the workflow into scanflow.yaml (created if missing).

        Tags: step:NAME, prev:NAME, imports, functions, pipeline-parameters (or
        parameters), pipeline-metrics, skip.
        """
        from scanflow.notebook import convert as convert_notebook

        app_dir = context.app_dir(ctx)
        done = convert_notebook(notebook, app_dir, workflow, steps_dir)
        _show(done)
        name = done.written.workflow.name
        if verify:
            _verify(done, app_dir, name, timeout)
        elif run:
            _run(app_dir, name)


def _show(done: Conversion) -> None:
    plan, written = done.plan, done.written
    for note in plan.notes:
        console.print(f"[dim]note:[/] {note}", highlight=False)
    console.print(
        f"workflow [bold]{written.workflow.name}[/] written to {written.spec_path}", highlight=False
    )
    for executor in written.workflow.executors:
        step = plan.steps[executor.name]
        console.print(
            f"  [bold]{executor.name}[/] {executor.script} (cells "
            f"{', '.join(map(str, step.cells))})",
            highlight=False,
        )
        inputs = ", ".join(f"{v} from {s}" for v, s in step.inputs.items())
        for label, text in (
            ("inputs", inputs),
            ("outputs", ", ".join(step.outputs)),
            ("metrics", ", ".join(step.metrics)),
            ("requires", ", ".join(step.requirements)),
        ):
            if text:
                console.print(f"    {label}: {text}", highlight=False)


def _run(app_dir: Path, workflow: str) -> None:
    from scanflow.cli.runs import ProgressPrinter
    from scanflow.notebook.errors import NotebookError
    from scanflow.notebook.running import cell_errors, run_workflow
    from scanflow.spec.loader import load_project

    project = load_project(app_dir)
    engine, record = run_workflow(project, workflow, ProgressPrinter())
    if record.status != "succeeded":
        problems = "\n  ".join(cell_errors(project, engine, record)) or record.error
        raise NotebookError(f"run {record.id} {record.status}:\n  {problems}")


def _verify(done: Conversion, app_dir: Path, workflow: str, timeout: float) -> None:
    from scanflow.cli.runs import ProgressPrinter
    from scanflow.notebook.verify import verify

    compared = verify(done.plan, app_dir, workflow, ProgressPrinter(), timeout)
    console.print(
        f"verified: the notebook and workflow {workflow} made the same {len(compared)} "
        f"value(s): " + ", ".join(f"{c.step}.{c.variable}" for c in compared),
        highlight=False,
    )
