"""What the API shows: plain pydantic models, the same for the CLI, the server's JSON (and
its OpenAPI document) and the dashboard's pages."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a longer list: ``total`` items match, ``items`` start at ``offset``."""

    items: list[T]
    total: int
    offset: int
    limit: int


class AppView(BaseModel):
    name: str
    team: str
    target: str
    workflows: list[str]
    services: list[str]
    agents: list[str]


class StepSpecView(BaseModel):
    name: str
    depends_on: list[str]


class WorkflowView(BaseModel):
    """A workflow's DAG as declared (drawn before any run starts)."""

    app: str
    name: str
    steps: list[StepSpecView]
    parameters: dict[str, Any] = Field(default_factory=dict)


class AttemptView(BaseModel):
    number: int
    exit_code: int | None
    error: str | None
    started_at: float
    finished_at: float | None
    duration: float | None
    log: str | None = Field(None, description="its log file, on the machine that ran it")


class StepView(BaseModel):
    name: str
    status: str
    depends_on: list[str]
    error: str | None
    cached_from: str | None
    mlflow_run_id: str | None
    started_at: float | None
    finished_at: float | None
    duration: float | None
    attempts: list[AttemptView]
    output_dir: str | None = Field(None, description="on the machine that ran it")


class RunSummary(BaseModel):
    """A row of the runs table."""

    id: str
    app: str
    team: str
    workflow: str
    status: str
    engine: str
    parameters: dict[str, Any]
    error: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    duration: float | None


class RunView(RunSummary):
    """A run with its steps and their attempts."""

    mlflow_run_id: str | None
    tracking_uri: str | None
    steps: list[StepView]
    run_dir: str | None = Field(None, description="on the machine that ran it")


class ActionResult(BaseModel):
    """What an action did."""

    ok: bool = True
    message: str
    run_id: str | None = None


class ServiceView(BaseModel):
    app: str
    name: str
    model: str
    port: int | None
    ready: bool
    workers: int | None = None
    model_version: str | None = None
    error: str | None = None
    status: dict[str, Any] = Field(default_factory=dict)


class DeadLetterView(BaseModel):
    """A message an agent gave up delivering."""

    id: str
    receiver: str
    intent: str | None
    attempts: int
    error: str | None


class AgentView(BaseModel):
    """An agent: declared, or one that ran (``pid`` set) with its heartbeat and troubles."""

    app: str
    name: str
    role: str
    strategy: str | None
    url: str | None = None
    pid: int | None = None
    alive: bool = False
    heartbeat_at: float | None = None
    open_decisions: int = 0
    dead_letters: int = 0
    letters: list[DeadLetterView] = Field(default_factory=list)
    errors: list[dict[str, Any]] = Field(default_factory=list, description="newest first")


class DecisionView(BaseModel):
    """One decision of an agent and the evidence it acted on (also what rules see of past
    decisions): ``results`` holds what each done step of its plan returned."""

    id: str
    app: str
    agent: str
    rule: str
    action: str
    key: str | None = None
    reason: str
    status: str
    evidence: dict[str, Any]
    steps: list[dict[str, Any]]
    results: dict[str, Any] = Field(default_factory=dict)
    outcome: str | None
    created_at: float
    finished_at: float | None
    mlflow_run_id: str | None
    correlation_id: str | None = None


class VersionView(BaseModel):
    version: str
    run_id: str | None
    source: str | None
    status: str | None
    created_at: float
    aliases: list[str]
    metrics: dict[str, float] = Field(default_factory=dict)


class ModelView(BaseModel):
    app: str
    name: str
    aliases: dict[str, str]
    latest_version: str | None
    versions: list[VersionView] = Field(default_factory=list)


class TokenView(BaseModel):
    id: str
    team: str
    scope: str
    name: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None


class Health(BaseModel):
    status: str
    version: str
    tracking_ready: bool = Field(
        description="the embedded MLflow stores are open (the server opens them as it starts)"
    )
