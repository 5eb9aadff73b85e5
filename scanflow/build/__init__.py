"""Environments for executors: virtualenvs locally (:mod:`.envs`), container images for
clusters (:mod:`.images`, ``scanflow build``; results read with :func:`.records.image_for`)."""
