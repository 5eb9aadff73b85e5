"""Built-in strategies, each a full MAPE chain: ``drift-retrain``, ``latency-autoscale``,
``failover``. Custom strategies subclass :class:`Strategy`."""

from scanflow.agents.strategies.base import Strategy, StrategyConfig

BUILTIN = {
    "drift-retrain": "scanflow.agents.strategies.drift_retrain:DriftRetrain",
    "latency-autoscale": "scanflow.agents.strategies.autoscale:LatencyAutoscale",
    "failover": "scanflow.agents.strategies.failover:Failover",
}

__all__ = ["BUILTIN", "Strategy", "StrategyConfig"]
