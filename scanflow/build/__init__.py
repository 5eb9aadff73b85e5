"""Environments for executors: virtualenvs locally (OCI images for clusters later)."""
