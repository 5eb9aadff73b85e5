"""From ``scanflow.yaml`` to runnable agents: strategies, references and triggers resolved,
configuration validated, every problem reported with its file, line and field."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scanflow.agents.declare import (
    ActuatorDecl,
    Registry,
    RuleDecl,
    SensorDecl,
    import_object,
    resolve,
)
from scanflow.agents.guards import Guardrails
from scanflow.agents.runtime import AgentSetup
from scanflow.agents.strategies import BUILTIN, Strategy
from scanflow.agents.triggers import Every, parse_trigger
from scanflow.errors import SpecError
from scanflow.spec.checks import Loc, Problem, did_you_mean
from scanflow.spec.loader import Project
from scanflow.spec.model import Agent


class AgentOptions(BaseModel):
    """Options of an agent declared with its own sensors, rules and actuators."""

    model_config = ConfigDict(extra="allow")

    interval: float = Field(default=5.0, gt=0)
    cooldown: float = Field(default=0.0, ge=0)
    cooldowns: dict[str, float] = Field(default_factory=dict)
    max_actions_per_day: int | None = Field(default=None, ge=0)
    sensor_timeout: float = Field(default=10.0, gt=0)
    actuator_timeout: float | None = Field(default=None, gt=0)


def strategy_class(reference: str) -> type[Strategy]:
    """The strategy called ``reference`` (a built-in name or ``module:Class``)."""
    if reference in BUILTIN:
        reference = BUILTIN[reference]
    elif ":" not in reference:
        raise ValueError(
            f"unknown strategy {reference!r}; use one of {', '.join(BUILTIN)} or "
            f"'module:Class' for your own{did_you_mean(reference, list(BUILTIN))}"
        )
    cls = import_object(reference)
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise ValueError(f"{reference!r} is not a subclass of scanflow.agents.Strategy")
    return cls


def _pydantic(exc: ValidationError, loc: Loc, options: list[str]) -> list[Problem]:
    """One problem per error, naming the option and, when misspelt, the closest one."""
    problems = []
    for err in exc.errors():
        where = (*loc, *err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            name = str(err["loc"][-1])
            msg = f"unknown option {name!r}" + (
                did_you_mean(name, options) or f"; options: {', '.join(options)}"
            )
        elif err["type"] == "missing":
            msg = "required option is missing; add it"
        elif isinstance(err.get("input"), str | int | float | bool):
            msg += f" (got {err['input']!r})"
        problems.append(Problem(where, msg))
    return problems


def _misspelt(config: dict[str, Any], options: list[str], loc: Loc) -> list[Problem]:
    """Keys of a custom agent's config that look like a misspelt option (its own keys are
    allowed, so only near misses are reported)."""
    problems = []
    for key in config:
        close = difflib.get_close_matches(str(key), options, n=1, cutoff=0.8)
        if key not in options and close:
            problems.append(
                Problem((*loc, key), f"unknown option {key!r}{did_you_mean(key, close)}")
            )
    return problems


def setup_agent(agent: Agent, app: str, index: int = 0) -> tuple[AgentSetup | None, list[Problem]]:
    """The runnable form of ``agent`` and the problems found (setup is None when any)."""
    loc: Loc = ("agents", index)
    problems: list[Problem] = []
    registry = Registry()
    triggers: list[Any] = []
    guardrails = Guardrails()
    sensor_timeout, actuator_timeout = 10.0, None
    config: dict[str, Any] = dict(agent.config)
    if agent.strategy:
        cls: type[Strategy] | None = None
        try:
            cls = strategy_class(agent.strategy)
        except ValueError as exc:
            problems.append(Problem((*loc, "strategy"), str(exc)))
            guess = difflib.get_close_matches(agent.strategy, list(BUILTIN), n=1, cutoff=0.6)
            if guess:  # check the options against the strategy meant, to report all at once
                cls = strategy_class(guess[0])
        if cls is not None:
            try:
                strategy = cls(cls.Config.model_validate(agent.config))
                registry = strategy.declare()
                triggers = strategy.triggers()
                guardrails = strategy.guardrails()
                sensor_timeout = strategy.config.sensor_timeout
                config = strategy.config.model_dump()
            except ValidationError as exc:
                problems += _pydantic(exc, (*loc, "config"), list(cls.Config.model_fields))
            except ValueError as exc:
                problems.append(Problem((*loc, "strategy"), str(exc)))
    else:
        options_loc: Loc = (*loc, "config")
        known = list(AgentOptions.model_fields)
        problems += _misspelt(agent.config, known, options_loc)
        try:
            options = AgentOptions.model_validate(agent.config)
            triggers = [Every(every=options.interval)]
            guardrails = Guardrails(
                cooldown=options.cooldown,
                cooldowns=options.cooldowns,
                max_actions_per_day=options.max_actions_per_day,
            )
            sensor_timeout, actuator_timeout = options.sensor_timeout, options.actuator_timeout
        except ValidationError as exc:
            problems += _pydantic(exc, options_loc, known)
    kinds: list[tuple[str, type[Any]]] = [
        ("sensors", SensorDecl),
        ("rules", RuleDecl),
        ("actuators", ActuatorDecl),
    ]
    for field, kind in kinds:
        for j, reference in enumerate(getattr(agent, field)):
            try:
                registry.add(resolve(reference, kind))
            except ValueError as exc:
                problems.append(Problem((*loc, field, j), str(exc)))
    if agent.triggers:
        triggers = []
        for j, declared in enumerate(agent.triggers):
            try:
                triggers.append(parse_trigger(declared))
            except ValidationError as exc:
                problems += _pydantic(exc, (*loc, "triggers", j), [])
            except ValueError as exc:
                problems.append(Problem((*loc, "triggers", j), str(exc)))
    if not agent.strategy and not registry.rules and not problems:
        problems.append(
            Problem(
                loc,
                f"agent {agent.name!r} has no strategy and no rules; give it a "
                f"'strategy' ({', '.join(BUILTIN)}) or 'rules: [module:function]'",
            )
        )
    if problems:
        return None, problems
    setup = AgentSetup(
        name=agent.name,
        registry=registry,
        triggers=triggers,
        guardrails=guardrails,
        config=config,
        role=agent.role,
        app=app,
        strategy=agent.strategy,
        sensor_timeout=sensor_timeout,
        actuator_timeout=actuator_timeout,
    )
    return setup, []


def load_agents(project: Project, names: list[str] | None = None) -> list[AgentSetup]:
    """The runnable agents of ``project`` (all, or those named); raises :class:`SpecError`
    listing every problem with its line in ``scanflow.yaml`` (what ``scanflow agents check``
    and ``scanflow validate`` report)."""
    import sys

    base = str(project.base_dir)
    if base not in sys.path:
        sys.path.insert(0, base)  # agents' own modules live beside scanflow.yaml
    known = [a.name for a in project.app.agents]
    problems = [
        Problem(
            (),
            f"no agent {name!r} in application {project.app.name!r} "
            f"(known: {', '.join(known) or 'none'}){did_you_mean(name, known)}",
        )
        for name in names or []
        if name not in known
    ]
    setups = []
    for index, agent in enumerate(project.app.agents):
        if names and agent.name not in names:
            continue
        setup, found = setup_agent(agent, project.app.name, index)
        problems += found
        if agent.strategy in BUILTIN or (setup is None and _close_builtin(agent.strategy)):
            config = setup.config if setup is not None else agent.config
            problems += reference_problems(config, project, ("agents", index, "config"))
        if setup is not None:
            setups.append(setup)
    if problems:
        raise SpecError(_with_lines(problems, project), _label(project))
    return setups


def _close_builtin(strategy: str | None) -> bool:
    return bool(strategy and difflib.get_close_matches(strategy, list(BUILTIN), n=1, cutoff=0.6))


def reference_problems(config: dict[str, Any], project: Project, loc: Loc) -> list[Problem]:
    """What a built-in strategy's options name that the application does not declare: its
    ``service`` (with a port, where agents reach it), its ``workflow``, and a failover
    ``backup_model`` that is not a version of the routed ``model``."""
    from scanflow.agents.strategies.failover import backup_ref

    app, problems = project.app, []
    services = {s.name: s for s in app.services}
    service = services.get(config.get("service", ""))
    if "service" in config and service is None:
        problems.append(
            Problem(
                (*loc, "service"),
                f"no service {config['service']!r} in "
                f"the application (known: {', '.join(services) or 'none'})"
                f"{did_you_mean(str(config['service']), list(services))}",
            )
        )
    elif service is not None and service.port is None:
        problems.append(
            Problem(
                (*loc, "service"),
                f"service {service.name!r} has no 'port'; "
                "agents reach services at their declared port: add one",
            )
        )
    workflows = [w.name for w in app.workflows]
    if "workflow" in config and config["workflow"] not in workflows:
        problems.append(
            Problem(
                (*loc, "workflow"),
                f"no workflow {config['workflow']!r} in "
                f"the application (known: {', '.join(workflows) or 'none'})"
                f"{did_you_mean(str(config['workflow']), workflows)}",
            )
        )
    if "backup_alias" in config:  # failover: its own backup_model, else the service's
        backup, where = config.get("backup_model"), (*loc, "backup_model")
        if backup is None and service is not None and service.backup_model is not None:
            index = app.services.index(service)
            backup, where = service.backup_model, ("services", index, "backup_model")
        if backup is not None:
            try:
                name = backup_ref(backup)[0]
            except ValueError as exc:
                return [*problems, Problem(where, str(exc))]
            if name != config.get("model"):
                problems.append(
                    Problem(
                        where,
                        f"backup model {backup!r} is not a version of {config.get('model')!r}, "
                        f"the model failover routes; register it as a version of it",
                    )
                )
    return problems


def _label(project: Project) -> str | None:
    return str(project.spec_path) if project.spec_path else None


def _with_lines(problems: list[Problem], project: Project) -> list[str]:
    if project.spec_path is None or not project.spec_path.is_file():
        return [p.render() for p in problems]
    import yaml

    from scanflow.spec.loader import _line_of  # one way to find lines for every layer

    root = yaml.compose(project.spec_path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    for problem in problems:
        problem.line, problem.source = _line_of(root, problem.loc), str(project.spec_path)
    return [p.render() for p in problems]
