"""The application model: what a team declares once (pydantic v2).

Every layer takes these objects; none invents its own. Structural rules (types,
unknown fields, DNS-1123 names) live here; rules across objects (cycles, dangling
dependencies, inputs) live in :mod:`scanflow.spec.checks`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from scanflow.spec.names import (  # noqa: F401 - re-exported
    DNS1123_LABEL,
    Name,
    Parameters,
    ParameterValue,
    Scalar,
    _check_parameter,
)
from scanflow.spec.schedule import Schedule


class _Model(BaseModel):
    """Base: unknown fields are errors, and the first positional argument is the name."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    def __init__(self, name: str | None = None, /, **data: Any) -> None:
        if name is not None:
            data["name"] = name
        super().__init__(**data)


class Resources(_Model):
    """What one executor or replica asks of a machine (Kubernetes requests later)."""

    cpu: str | float | None = None
    memory: str | None = None
    gpu: int = Field(default=0, ge=0)

    @field_validator("cpu")
    @classmethod
    def _cpu_quantity(cls, value: str | float | None) -> str | float | None:
        if isinstance(value, str) and not re.match(r"^\d+(\.\d+)?m?$", value):
            raise ValueError(f"{value!r} is not a CPU quantity (e.g. 2, 0.5 or '500m')")
        return value


def _function_reference(value: Any) -> Any:
    if not callable(value):
        return value
    module, qualname = value.__module__, value.__qualname__
    if module == "__main__" or "<locals>" in qualname:
        raise ValueError(
            f"function {qualname!r} is defined in {module!r}; executors run in their own "
            "process, so move it to an importable module and pass it (or 'module:function')"
        )
    return f"{module}:{qualname}"


class Executor(_Model):
    """One step of a workflow: a script, a ``module:function`` or a notebook (run with
    papermill), in its own process."""

    name: Name
    script: str | None = None
    function: Annotated[str | None, BeforeValidator(_function_reference)] = None
    notebook: str | None = Field(
        default=None,
        description="A .ipynb run whole with papermill: parameters, input and output paths "
        "injected after its 'parameters' cell; the executed notebook is logged to MLflow.",
    )
    parameters: Parameters = Field(default_factory=dict)
    requirements: list[str] | str = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    inputs: dict[str, str] | list[str] = Field(default_factory=dict)
    outputs: list[str] = Field(default_factory=list)
    depends_on: list[str] = Field(default_factory=list)
    retries: int = Field(default=0, ge=0)
    retry_backoff: float = Field(default=1.0, ge=0)
    timeout: float | None = Field(default=None, gt=0)
    cache: bool = True
    resources: Resources = Field(default_factory=Resources)
    start_method: Literal["spawn", "forkserver"] | None = Field(
        default=None,
        description="How the local engine starts the step: 'spawn' (a new process) or "
        "'forkserver' (forked from a process that has imported the step's libraries); "
        "unset: the engine's choice ('forkserver' for tuning trials, else 'spawn').",
    )

    @field_validator("function")
    @classmethod
    def _function_has_colon(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[\w.]+:[\w.]+$", value):
            raise ValueError(f"{value!r} is not 'module:function' (e.g. 'steps.train:main')")
        return value

    @field_validator("outputs")
    @classmethod
    def _outputs_are_identifiers(cls, value: list[str]) -> list[str]:
        for out in value:
            if not out.isidentifier():
                raise ValueError(f"output {out!r} must be a Python identifier (e.g. 'model')")
        return value

    @model_validator(mode="after")
    def _script_or_function(self) -> Executor:
        if [self.script, self.function, self.notebook].count(None) != 2:
            raise ValueError(
                f"executor {self.name!r} needs exactly one of 'script' (a .py file), "
                "'function' ('module:function') or 'notebook' (a .ipynb file)"
            )
        return self

    def input_refs(self) -> dict[str, str]:
        """Inputs as ``{argument: reference}``; a list entry ``x.y`` becomes ``{y: x.y}``."""
        if isinstance(self.inputs, dict):
            return dict(self.inputs)
        return {ref.rsplit(".", 1)[-1]: ref for ref in self.inputs}

    def __rshift__(self, other: Executor | Iterable[Executor]) -> Executor | Iterable[Executor]:
        """``a >> b`` makes ``b`` depend on ``a``; returns ``b`` so chains read left to right."""
        for target in [other] if isinstance(other, Executor) else list(other):
            if self.name not in target.depends_on:
                target.depends_on.append(self.name)
        return other

    def __rrshift__(self, other: Iterable[Executor]) -> Executor:
        """``[a, b] >> c`` makes ``c`` depend on both."""
        for source in other:
            source >> self
        return self


class Workflow(_Model):
    """A DAG of executors with shared default parameters."""

    name: Name
    parameters: Parameters = Field(default_factory=dict)
    executors: list[Executor] = Field(default_factory=list)

    def add(
        self,
        executor: Executor,
        depends_on: Iterable[Executor | str] = (),
    ) -> Executor:
        """Add ``executor`` after the given upstream executors (objects or names)."""
        for upstream in depends_on:
            name = upstream.name if isinstance(upstream, Executor) else upstream
            if name not in executor.depends_on:
                executor.depends_on.append(name)
        self.executors.append(executor)
        return executor

    def executor(self, name: str) -> Executor:
        """The executor called ``name``."""
        for executor in self.executors:
            if executor.name == name:
                return executor
        known = ", ".join(e.name for e in self.executors) or "none"
        raise KeyError(f"workflow {self.name!r} has no executor {name!r} (known: {known})")


class Batching(_Model):
    """Adaptive micro-batching of concurrent prediction requests."""

    enabled: bool = True
    max_batch_size: int = Field(default=1024, ge=1)
    max_wait_ms: float = Field(default=2.0, ge=0)


class PredictionLogging(_Model):
    """Which predictions a service appends to its prediction log, and the log's limits."""

    enabled: bool = True
    sample_rate: float = Field(default=1.0, ge=0, le=1)
    flush_interval_ms: float = Field(default=200.0, gt=0)  # at most this much is lost on a crash
    segment_mb: float = Field(default=16.0, gt=0)
    max_mb: float = Field(default=512.0, gt=0)  # oldest sealed segments are deleted past this
    queue_size: int = Field(default=20_000, ge=1)  # records waiting to be written; more are dropped


class Service(_Model):
    """An online model service (runtime in :mod:`scanflow.serving`)."""

    name: Name
    model: str
    # "auto": one worker per core this process may run on, within min/max_workers
    workers: Annotated[int, Field(ge=1)] | Literal["auto"] = "auto"
    min_workers: int = Field(default=1, ge=1)
    max_workers: int = Field(default=4, ge=1)
    batching: Batching = Field(default_factory=Batching)
    backup_model: str | None = None
    log_predictions: PredictionLogging = Field(default_factory=PredictionLogging)
    port: int | None = Field(default=None, ge=1, le=65535)
    resources: Resources = Field(default_factory=Resources)
    max_request_mb: float = Field(default=16.0, gt=0)  # larger bodies get 413
    poll_interval: float = Field(default=2.0, gt=0)  # seconds between registry alias checks
    allow_non_finite: bool = False  # accept NaN/inf in float inputs
    fast_path: bool = True  # call scikit-learn models directly on numpy (else mlflow.pyfunc)


def _yaml_on_keys(value: Any) -> Any:
    """YAML 1.1 reads an unquoted key ``on`` as ``true``: give triggers their ``on`` back."""
    if not isinstance(value, list):
        return value
    return [
        {("on" if k is True else k): v for k, v in item.items()} if isinstance(item, dict) else item
        for item in value
    ]


class Agent(_Model):
    """A supervising agent of the MAPE loop (runtime in :mod:`scanflow.agents`)."""

    name: Name
    role: Literal["monitor", "analyzer", "planner", "executor"] = "monitor"
    strategy: str | None = None
    sensors: list[str] = Field(default_factory=list)
    rules: list[str] = Field(default_factory=list)
    actuators: list[str] = Field(default_factory=list)
    triggers: Annotated[list[str | dict[str, Any]], BeforeValidator(_yaml_on_keys)] = Field(
        default_factory=list
    )
    port: int | None = Field(default=None, ge=0, le=65535)
    config: dict[str, Any] = Field(default_factory=dict)


class Tracker(_Model):
    """Where runs, models and artifacts are tracked; the embedded SQLite store when absent.

    ``uri`` names an existing tracking server or store; ``managed=True`` means the stack
    started by ``scanflow tracker up`` (MLflow server, PostgreSQL, S3) in the app folder.
    A managed stack keeps artifacts in its own S3 store unless ``s3_endpoint`` names an
    external one (its keys then come from ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``).
    """

    name: Name = "default"
    uri: str | None = None
    managed: bool = False
    port: int | None = Field(default=None, ge=1, le=65535)
    s3_endpoint: str | None = None
    s3_bucket: str = Field(default="mlflow", pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    workers: int = Field(default=1, ge=1, le=16)

    @model_validator(mode="after")
    def _uri_or_managed(self) -> Tracker:
        if self.uri and self.managed:
            raise ValueError(
                f"tracker {self.name!r} has both 'uri' and 'managed: true'; keep 'uri' to use "
                "an existing server, or 'managed: true' for the stack of 'scanflow tracker up'"
            )
        if self.s3_endpoint and not self.managed:
            raise ValueError(
                f"tracker {self.name!r}: 's3_endpoint' applies only to a managed tracker "
                "('managed: true')"
            )
        return self


class Build(_Model):
    """How images are built (``scanflow build``): where they go and what they start from."""

    registry: str | None = Field(
        default=None,
        description="Repository prefix images are pushed to, e.g. 'registry.example:5000/team'; "
        "none: images are built and kept locally, never pushed.",
    )
    base_image: str = "python:3.11-slim"
    builder: Literal["auto", "buildah", "docker", "kaniko"] = "auto"
    kaniko_image: str = Field(
        default="kaniko-project/executor:v1.23.2",
        description="The kaniko executor image in-cluster builds run (prefix your registry).",
    )
    tls_verify: bool = True


class Kubernetes(_Model):
    """Where and how the application runs on a cluster (``--target kubernetes``)."""

    context: str | None = None  # kubeconfig context; default: the current one (or in-cluster)
    namespace: Name | None = None  # default: '<team>-<application>', shortened with a hash
    workflow_engine: Literal["argo", "jobs"] = "argo"
    serving_node_label: str | None = Field(
        default=None,
        description="Node label 'key=value' of the nodes that serve online traffic; batch "
        "pods keep off them (anti-affinity). None: no placement rule.",
    )
    image_pull_secrets: list[str] = Field(default_factory=list)


class SearchParameter(_Model):
    """One tuned parameter: ``float``/``int`` between ``low`` and ``high`` (``log`` scale
    optional, ``step`` for a grid of values) or ``categorical`` among ``choices``."""

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = Field(default=None, gt=0)
    choices: list[Scalar] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> SearchParameter:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical parameter needs a non-empty 'choices' list")
            if self.low is not None or self.high is not None or self.log:
                raise ValueError("a categorical parameter takes 'choices', not 'low'/'high'/'log'")
            return self
        if self.choices:
            raise ValueError(f"a {self.type} parameter takes 'low' and 'high', not 'choices'")
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} parameter needs both 'low' and 'high'")
        if self.low > self.high:
            raise ValueError(f"'low' ({self.low}) is above 'high' ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"log scale needs 'low' > 0 (got {self.low}); raise 'low' or drop log")
        if self.log and self.step is not None:
            raise ValueError("'step' and 'log' cannot be combined; drop one")
        return self


class Objective(_Model):
    """The metric a trial is judged by: its last value logged by ``step`` (any step when
    omitted); its values logged with ``step=k`` feed the pruner."""

    metric: str
    direction: Literal["minimize", "maximize"] = "maximize"
    step: str | None = None


class Pruner(_Model):
    """Early stopping on intermediate values: median, percentile, successive halving,
    hyperband or none."""

    type: Literal["median", "percentile", "successive-halving", "hyperband", "none"] = "median"
    startup_trials: int = Field(default=5, ge=0)  # trials finished before pruning starts
    warmup_steps: int = Field(default=0, ge=0)  # steps of a trial before it can be pruned
    percentile: float = Field(default=25.0, gt=0, lt=100)
    min_resource: int = Field(default=1, ge=1)
    max_resource: int | None = Field(default=None, ge=1)  # hyperband; None: 'auto'


class Study(_Model):
    """A hyperparameter search over one workflow: each trial is a run of it."""

    name: Name
    workflow: Name
    space: dict[str, SearchParameter]
    objective: Objective | list[Objective]
    algorithm: Literal["random", "grid", "tpe", "cmaes", "qmc"] = "tpe"
    pruner: Pruner = Field(default_factory=Pruner)
    seed: int | None = None
    max_trials: int = Field(default=20, ge=1)
    parallel_trials: int = Field(default=1, ge=1)
    max_failed_trials: int | None = Field(default=None, ge=1)
    timeout: float | None = Field(default=None, gt=0)  # wall-time budget in seconds
    warm_start: Name | None = None  # another study whose best trials this one tries first
    warm_start_trials: int = Field(default=3, ge=1)

    @field_validator("space")
    @classmethod
    def _not_empty(cls, value: dict[str, SearchParameter]) -> dict[str, SearchParameter]:
        if not value:
            raise ValueError("the search space is empty; add at least one parameter to 'space'")
        return value

    def objectives(self) -> list[Objective]:
        """The objectives as a list (several give a Pareto front)."""
        return self.objective if isinstance(self.objective, list) else [self.objective]

    @model_validator(mode="after")
    def _consistent(self) -> Study:
        if isinstance(self.objective, list) and not self.objective:
            raise ValueError(f"study {self.name!r} needs at least one objective")
        names = [o.metric for o in self.objectives()]
        if len(set(names)) != len(names):
            raise ValueError(f"study {self.name!r} names an objective metric twice: {names}")
        if self.algorithm == "grid":
            bad = [k for k, p in self.space.items() if p.type == "float" and p.step is None]
            if bad:
                raise ValueError(
                    f"grid search needs finite values; give {', '.join(bad)} a 'step' or "
                    "make them categorical"
                )
        if self.algorithm == "cmaes" and all(p.type == "categorical" for p in self.space.values()):
            raise ValueError("cmaes needs at least one float or int parameter; use tpe")
        return self


class Application(_Model):
    """What a team declares once: workflows, services, agents and a tracker."""

    name: Name
    team: Name = "default"
    workflows: list[Workflow] = Field(default_factory=list)
    services: list[Service] = Field(default_factory=list)
    agents: list[Agent] = Field(default_factory=list)
    tracker: Tracker | None = None
    trackers: list[Tracker] = Field(default_factory=list)
    build: Build = Field(default_factory=Build)
    kubernetes: Kubernetes = Field(default_factory=Kubernetes)
    tuning: list[Study] = Field(default_factory=list)
    schedules: list[Schedule] = Field(default_factory=list)
    target: Name = Field(
        "local",
        description="The engine that runs it unless a command names one with --target "
        "('local', or one registered under the entry point group 'scanflow.engines').",
    )

    @field_validator("trackers")
    @classmethod
    def _other_trackers_have_uris(cls, value: list[Tracker]) -> list[Tracker]:
        seen: set[str] = set()
        for tracker in value:
            if not tracker.uri:
                raise ValueError(
                    f"tracker {tracker.name!r} in 'trackers' needs a 'uri' (e.g. "
                    "'http://central:5000'); only the app's own 'tracker' can be managed"
                )
            if tracker.name in seen:
                raise ValueError(f"duplicate tracker name {tracker.name!r}; names must be unique")
            seen.add(tracker.name)
        return value

    @model_validator(mode="after")
    def _tuning_matches_workflows(self) -> Application:
        from scanflow.tuning.space import space_problems

        problems = [p for study in self.tuning for p in space_problems(self, study)]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def find_tracker(self, name: str) -> Tracker | None:
        """The tracker called ``name``: the app's own or one of ``trackers``."""
        own = [self.tracker] if self.tracker is not None else []
        return next((t for t in own + self.trackers if t.name == name), None)

    def workflow(self, name: str) -> Workflow:
        """The workflow called ``name``."""
        for workflow in self.workflows:
            if workflow.name == name:
                return workflow
        known = ", ".join(w.name for w in self.workflows) or "none"
        from scanflow.errors import SpecError

        raise SpecError([f"no workflow {name!r} in application {self.name!r} (known: {known})"])

    # -- the YAML front door -------------------------------------------------------
    @classmethod
    def from_yaml(cls, source: str | Path, *, check_files: bool = True) -> Application:
        """Load and validate a ``scanflow.yaml`` (a path, or YAML text)."""
        from scanflow.spec.loader import load_application

        return load_application(source, check_files=check_files)

    def to_yaml(self) -> str:
        """The canonical YAML form; ``from_yaml(x.to_yaml()) == x``."""
        import yaml

        data = self.model_dump(mode="json", exclude_defaults=True)
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)

    def check(self, base_dir: str | Path | None = None) -> None:
        """Raise :class:`~scanflow.errors.SpecError` listing every rule broken across objects."""
        from scanflow.errors import SpecError
        from scanflow.spec.checks import find_problems

        problems = find_problems(self, Path(base_dir) if base_dir else None)
        if problems:
            raise SpecError([p.render() for p in problems])
