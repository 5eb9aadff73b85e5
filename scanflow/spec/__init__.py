"""The application model, Scanflow's lingua franca: Python classes and ``scanflow.yaml``."""

from scanflow.spec.loader import SPEC_FILE, Project, load_project
from scanflow.spec.model import (
    Agent,
    Application,
    Batching,
    Build,
    Executor,
    Kubernetes,
    PredictionLogging,
    Resources,
    Schedule,
    Service,
    Tracker,
    Workflow,
)

__all__ = [
    "SPEC_FILE",
    "Agent",
    "Application",
    "Batching",
    "Build",
    "Executor",
    "Kubernetes",
    "PredictionLogging",
    "Project",
    "Resources",
    "Schedule",
    "Service",
    "Tracker",
    "Workflow",
    "load_project",
]
