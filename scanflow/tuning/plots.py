"""Plots of a study as PNG files: optimisation history, intermediate values, parameter
importances (or the Pareto front of two objectives)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

    from scanflow.spec.model import Study

log = logging.getLogger(__name__)


def save_plots(study: optuna.Study, spec: Study, folder: Path) -> list[Path]:
    """Write the plots that apply to ``study`` into ``folder``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as vis

    folder.mkdir(parents=True, exist_ok=True)
    objectives = spec.objectives()
    first = objectives[0].metric
    target: dict[str, Any] = {}
    if len(objectives) > 1:
        target = {"target": lambda t: t.values[0], "target_name": first}
    plots = {"history": lambda: vis.plot_optimization_history(study, **target)}
    if any(t.intermediate_values for t in study.trials):
        plots["intermediate"] = lambda: vis.plot_intermediate_values(study)
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    if len(complete) >= 2 and len(spec.space) >= 2:
        plots["importances"] = lambda: vis.plot_param_importances(study, **target)
    if len(objectives) == 2:
        names = [o.metric for o in objectives]
        plots["pareto"] = lambda: vis.plot_pareto_front(study, target_names=names)
    saved = []
    for name, draw in plots.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # optuna marks its matplotlib plots experimental
            axes: Any = draw()  # one Axes, or an array of them
        figure = (axes if hasattr(axes, "figure") else next(iter(axes.flat))).figure
        path = folder / f"{name}.png"
        figure.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(figure)
        saved.append(path)
        log.info("saved %s", path)
    return saved
