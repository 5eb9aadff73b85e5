"""Alembic migrations of the state store (applied by :func:`scanflow.store.schema.upgrade`)."""
