"""Agents: the MAPE loop that supervises workflows and services (see ``docs/agents.md``).

What users declare (sensors, rules, actuators, triggers, strategies) lives in
:mod:`~scanflow.agents.declare`, :mod:`~scanflow.agents.triggers` and
:mod:`~scanflow.agents.strategies`; the runtime that reacts lives in
:mod:`~scanflow.agents.runtime`. Names load lazily.
"""

from __future__ import annotations

from scanflow.lazy import lazy_exports

_LAZY = {
    "sensor": "scanflow.agents.declare",
    "rule": "scanflow.agents.declare",
    "actuator": "scanflow.agents.declare",
    "Registry": "scanflow.agents.declare",
    "Reading": "scanflow.agents.facts",
    "Facts": "scanflow.agents.facts",
    "Decision": "scanflow.agents.plans",
    "Step": "scanflow.agents.plans",
    "Outcome": "scanflow.agents.plans",
    "decide": "scanflow.agents.plans",
    "Message": "scanflow.agents.messages",
    "Guardrails": "scanflow.agents.guards",
    "Event": "scanflow.agents.triggers",
    "Every": "scanflow.agents.triggers",
    "Cron": "scanflow.agents.triggers",
    "At": "scanflow.agents.triggers",
    "OnMessage": "scanflow.agents.triggers",
    "OnRunFinished": "scanflow.agents.triggers",
    "OnAliasMoved": "scanflow.agents.triggers",
    "OnPredictions": "scanflow.agents.triggers",
    "OnMetric": "scanflow.agents.triggers",
    "parse_trigger": "scanflow.agents.triggers",
    "Strategy": "scanflow.agents.strategies.base",
    "StrategyConfig": "scanflow.agents.strategies.base",
    "Toolkit": "scanflow.agents.toolkit",
    "AgentSetup": "scanflow.agents.runtime",
    "AgentRuntime": "scanflow.agents.runtime",
    "ActionContext": "scanflow.agents.context",
    "SensorContext": "scanflow.agents.context",
    "load_agents": "scanflow.agents.config",
}

__getattr__, __all__ = lazy_exports(__name__, _LAZY)
