"""Batch inference: score a CSV or Parquet dataset with an MLflow model, in parallel.

Use it as a workflow executor (``function: scanflow.batch:score``), from the CLI
(``scanflow score``) or from Python::

    from scanflow.batch import score
    summary = score("models:/digits@champion", "pixels.parquet", "predictions", id_column="id")

See ``docs/batch.md``.
"""

from scanflow.batch.errors import BatchError, BatchInputError
from scanflow.batch.score import Summary, score

__all__ = ["BatchError", "BatchInputError", "Summary", "score"]
