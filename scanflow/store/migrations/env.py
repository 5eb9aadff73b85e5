"""Alembic environment: migrations run on the connection Scanflow hands over."""

from alembic import context

from scanflow.store import (
    agent_models,  # noqa: F401 - registers the agents' tables
    metric_models,  # noqa: F401 - registers the run metrics tables
    token_models,  # noqa: F401 - registers the API tokens table
)
from scanflow.store.models import Base

context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()
