"""Engines run workflows and services: local (embedded default), Kubernetes later."""
