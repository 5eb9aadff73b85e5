"""MLflow glue: tracking URIs, runs of workflows and steps, and the step logging API.

Step code logs with no setup::

    from scanflow import tracking
    tracking.log_metric("accuracy", 0.97)
"""

from scanflow.tracking.step import (
    current_run_id,
    flush,
    log_artifact,
    log_metric,
    log_metrics,
    log_model,
    log_param,
    log_params,
    register_model,
    set_tag,
)

__all__ = [
    "current_run_id",
    "flush",
    "log_artifact",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "register_model",
    "set_tag",
]
