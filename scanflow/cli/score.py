"""``scanflow score``: batch inference of a CSV/Parquet dataset with an MLflow model."""

from __future__ import annotations

import dataclasses

import typer

from scanflow.cli.output import console, print_json


def register(app: typer.Typer) -> None:
    """Add the ``score`` command to ``app``."""

    @app.command("score")
    def score_command(
        model: str = typer.Argument(
            ..., help="Model URI: models:/NAME@ALIAS, a version, a run's model or a folder."
        ),
        data: str = typer.Argument(..., help="A CSV or Parquet file, or a folder of them."),
        output: str = typer.Argument(..., help="Folder to write (Parquet parts, one per chunk)."),
        id_column: str | None = typer.Option(
            None,
            "--id-column",
            help="Input column copied beside each prediction (default: the row number).",
        ),
        features: str | None = typer.Option(
            None,
            "--features",
            help="Comma-separated feature columns (models without column names).",
        ),
        chunk_size: int = typer.Option(
            0,
            "--chunk-size",
            help="Rows per chunk (0: by the model's width, 50,000 for 64 floats).",
        ),
        workers: int = typer.Option(
            0,
            "--workers",
            help="Scoring processes (0: one per core; under 100,000 rows: this process).",
        ),
        on_error: str = typer.Option(
            "fail",
            "--on-error",
            help="Bad rows or files: fail (stop, write nothing) or skip (count them).",
        ),
        tracking_uri: str | None = typer.Option(
            None,
            "--tracking-uri",
            help="MLflow server holding the model (default: $MLFLOW_TRACKING_URI).",
        ),
        track: bool = typer.Option(
            False, "--track", help="Log counts and timings to an MLflow run."
        ),
        json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Score a dataset in parallel; run it again after a crash to resume."""
        from scanflow.batch import score

        summary = score(
            model,
            data,
            output,
            id_column=id_column,
            features=[f.strip() for f in features.split(",")] if features else None,
            chunk_size=chunk_size,
            workers=workers,
            on_error=on_error,
            tracking_uri=tracking_uri,
            track=track or None,
        )
        if json_out:
            print_json(dataclasses.asdict(summary) | {"rows_per_second": summary.rows_per_second})
            return
        console.print(
            f"scored {summary.rows} rows with {model} (version {summary.model_version}) "
            f"into {summary.output} in {summary.seconds:.1f} s "
            f"({summary.rows_per_second:,.0f} rows/s); {summary.chunks_resumed} chunk(s) "
            f"resumed, {summary.bad_rows} bad row(s) skipped, "
            f"{len(summary.skipped_files)} file(s) skipped"
        )
        for row, reason in summary.bad_examples[:5]:
            console.print(f"  bad row {row}: {reason}")
