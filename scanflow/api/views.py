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
    metrics: dict[str, float] = Field(
        default_factory=dict, description="last value of each metric (when asked for)"
    )


class RunView(RunSummary):
    """A run with its steps and their attempts."""

    mlflow_run_id: str | None
    tracking_uri: str | None
    steps: list[StepView]
    run_dir: str | None = Field(None, description="on the machine that ran it")


class ValueRow(BaseModel):
    """One parameter or metric across compared runs (run id -> value)."""

    name: str
    values: dict[str, Any]
    differs: bool


class MetricCurve(BaseModel):
    """Every value a run logged for one metric (in one of its steps)."""

    run_id: str
    metric: str
    step: str
    steps: list[int]
    values: list[float]
    timestamps: list[float]


class CompareView(BaseModel):
    """Runs side by side, from one workflow or several: parameters, last metric values,
    and the metric curves to overlay."""

    runs: list[RunSummary]
    parameters: list[ValueRow]
    metrics: list[ValueRow]
    curves: list[MetricCurve]


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


class ServicePoint(BaseModel):
    """A service at one sample: rates over the interval before it, gauges at it."""

    at: float
    ready: bool
    workers: int | None = None
    workers_target: int | None = None
    model_version: str | None = None
    requests_per_s: float | None = None
    errors_per_s: float | None = None
    p95_ms: float | None = Field(
        default=None, description="upper bound of the latency bucket holding the 95th percentile"
    )


class VersionSpan(BaseModel):
    """A model version serving without interruption, from the prediction log."""

    version: str
    first_at: float
    last_at: float
    predictions: int


class ServiceHistory(BaseModel):
    """What a service did over time: samples taken by this server (since ``since``, every
    ``interval`` seconds) and which version served when (from the prediction log)."""

    app: str
    name: str
    interval: float
    since: float | None
    points: list[ServicePoint]
    versions: list[VersionSpan]


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
    paused: dict[str, Any] | None = Field(
        default=None, description="who paused the agent, when and why; null while it runs"
    )


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


class LineageStep(BaseModel):
    """One link of a decision's chain, with the evidence it opens."""

    kind: str = Field(
        description="data, drift, decision, retrain, gate, alias, served, outcome or an action"
    )
    title: str
    state: str = Field(description="ok, bad, wait (not yet) or idle (skipped)")
    at: float | None
    summary: str
    evidence: dict[str, Any] = Field(default_factory=dict)
    link: str | None = Field(default=None, description="the dashboard page it points at")


class Lineage(BaseModel):
    """A decision from the data that raised it to its outcome, and what a person may do."""

    decision: DecisionView
    steps: list[LineageStep]
    followups: list[DecisionView] = Field(
        description="later decisions about this one: approvals, rollbacks, reverts"
    )
    can_approve: bool = Field(description="the plan awaits a person: approve or reject it")
    can_revert: bool
    revert: dict[str, Any] | None = Field(
        default=None, description="the alias move a revert makes: model, alias, from, to"
    )


class VersionView(BaseModel):
    version: str
    run_id: str | None
    source: str | None
    status: str | None
    created_at: float
    aliases: list[str]
    metrics: dict[str, float] = Field(default_factory=dict)
    workflow_run: str | None = Field(default=None, description="the Scanflow run that made it")
    workflow: str | None = None
    step: str | None = None
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="the parameters of that run (its data among them)"
    )
    datasets: list[str] = Field(
        default_factory=list, description="datasets the MLflow run logged as inputs"
    )
    promoted_by: str | None = Field(default=None, description="the decision that promoted it")


class ModelView(BaseModel):
    app: str
    name: str
    aliases: dict[str, str]
    latest_version: str | None
    versions: list[VersionView] = Field(default_factory=list)
    team: str | None = None


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
