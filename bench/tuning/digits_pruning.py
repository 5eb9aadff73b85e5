"""The same study on the digits example with and without early stopping: wall time and
best accuracy.

Each run makes a fresh application (``load_data.py`` of examples/digits, then a ``fit``
step training a two-layer MLP for ``--epochs`` epochs with ``partial_fit`` and logging the
test accuracy after each epoch), and runs ``--trials`` trials of a random search (seed 0:
both modes try the same values in the same order) through the local engine, one trial at
a time. Modes alternate within each repeat. Prints a table and writes JSON.

    .venv/bin/python bench/tuning/digits_pruning.py --trials 16 --epochs 30 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FIT = """
import numpy as np
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

from scanflow import tracking


def fit(dataset, learning_rate, alpha, width, epochs, seed=0):
    data = np.load(dataset)
    model = MLPClassifier(
        hidden_layer_sizes=(width, width),
        learning_rate_init=learning_rate,
        alpha=alpha,
        batch_size=64,
        random_state=seed,
    )
    tracking.set_tag("phase", "training")
    tracking.flush()  # connected before the first epoch
    with threadpool_limits(1):
        for epoch in range(epochs):
            model.partial_fit(data["X_train"], data["y_train"], classes=np.arange(10))
            accuracy = float(model.score(data["X_test"], data["y_test"]))
            tracking.log_metric("val_accuracy", accuracy, step=epoch)
            tracking.flush()
"""

SPEC = """
name: digits-tuning
workflows:
  - name: train
    executors:
      - name: load-data
        script: load_data.py
        outputs: [dataset]
      - name: fit
        function: fit_mlp:fit
        inputs: [load-data.dataset]
        parameters: {{learning_rate: 0.001, alpha: 0.0001, width: 128, epochs: {epochs}}}
tuning:
  - name: mlp
    workflow: train
    space:
      learning_rate: {{type: float, low: 0.00001, high: 1.0, log: true}}
      alpha: {{type: float, low: 0.000001, high: 0.1, log: true}}
      width: {{type: categorical, choices: [32, 128, 256]}}
    objective: {{metric: val_accuracy, step: fit, direction: maximize}}
    algorithm: random
    seed: 0
    pruner: {pruner}
    max_trials: {trials}
"""

PRUNERS = {
    "none": "{type: none}",
    "median": "{type: median, startup_trials: 3, warmup_steps: 3}",
    "successive-halving": "{type: successive-halving, min_resource: 3}",
    "hyperband": "{type: hyperband, min_resource: 3}",
}


def run_once(mode: str, trials: int, epochs: int) -> dict[str, object]:
    """One study in a fresh application; its wall time, best accuracy and trial states."""
    from scanflow.spec import load_project
    from scanflow.tuning.study import Tuner, find_study

    folder = Path(tempfile.mkdtemp(prefix=f"tuning-{mode}-"))
    try:
        shutil.copy(ROOT / "examples" / "digits" / "load_data.py", folder)
        (folder / "fit_mlp.py").write_text(FIT)
        spec = SPEC.format(epochs=epochs, trials=trials, pruner=PRUNERS[mode])
        (folder / "scanflow.yaml").write_text(spec)
        project = load_project(folder)
        tuner = Tuner(project, find_study(project, "train", None), poll_interval=0.2)
        start = time.perf_counter()
        study = tuner.run()
        wall = time.perf_counter() - start
        states = [t.state.name.lower() for t in study.trials]
        return {
            "mode": mode,
            "wall_s": round(wall, 1),
            "best_accuracy": study.best_value,
            "best_params": study.best_params,
            "complete": states.count("complete"),
            "pruned": states.count("pruned"),
            "failed": states.count("fail"),
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pruner", choices=[p for p in PRUNERS if p != "none"], default="median")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "tuning_digits.json"))
    args = parser.parse_args()

    runs = []
    for r in range(args.repeat):
        modes = ["none", args.pruner] if r % 2 == 0 else [args.pruner, "none"]
        for mode in modes:
            result = run_once(mode, args.trials, args.epochs)
            runs.append({"repeat": r, **result})
            print(json.dumps(runs[-1]), flush=True)
    summary = {}
    for mode in ("none", args.pruner):
        mine = [x for x in runs if x["mode"] == mode]
        summary[mode] = {
            "wall_s_median": statistics.median(float(x["wall_s"]) for x in mine),
            "best_accuracy_median": statistics.median(float(x["best_accuracy"]) for x in mine),
            "pruned_median": statistics.median(int(x["pruned"]) for x in mine),
        }
    speedup = summary["none"]["wall_s_median"] / summary[args.pruner]["wall_s_median"]
    gap = 100 * (
        summary["none"]["best_accuracy_median"] - summary[args.pruner]["best_accuracy_median"]
    )
    print(f"{'mode':<20} {'wall s':>8} {'best acc':>9} {'pruned':>7}")
    for mode, row in summary.items():
        print(
            f"{mode:<20} {row['wall_s_median']:>8.1f} {row['best_accuracy_median']:>9.4f} "
            f"{row['pruned_median']:>7}"
        )
    print(f"speed-up {speedup:.2f}x; best accuracy lower by {gap:.2f} points with early stopping")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = {"trials": args.trials, "epochs": args.epochs, "pruner": args.pruner}
    record = {"settings": settings, "runs": runs, "summary": summary, "speedup": speedup}
    out.write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
