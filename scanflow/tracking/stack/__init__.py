"""A team's tracker stack on one machine: MLflow server, PostgreSQL and an S3 store.

``TrackerStack(project).up()`` starts what is missing and returns when the server answers;
``down()`` stops exactly the processes it started. See ``docs/tracker.md``.
"""

from scanflow.tracking.stack.stack import StackStatus, TrackerStack, UpResult, stack_for

__all__ = ["StackStatus", "TrackerStack", "UpResult", "stack_for"]
