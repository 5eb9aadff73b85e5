"""Compare the two models on the holdout split; register the best as ``digits@champion``."""

import argparse
import json
import pickle

import numpy as np

from scanflow import tracking

parser = argparse.ArgumentParser()
parser.add_argument("--dataset", required=True)
parser.add_argument("--logreg", required=True)
parser.add_argument("--forest", required=True)
parser.add_argument("--model_name", default="digits")
parser.add_argument("--alias", default="champion")
parser.add_argument("--report", required=True, help="output path (.json)")
parser.add_argument("--seed", type=int, default=42)
args = parser.parse_args()

data = np.load(args.dataset)
scores = {}
models = {}
for name in ("logreg", "forest"):
    with open(getattr(args, name), "rb") as handle:
        models[name] = pickle.load(handle)
    scores[name] = float(models[name].score(data["X_holdout"], data["y_holdout"]))
    tracking.log_metric(f"holdout_accuracy_{name}", scores[name])
best = max(scores, key=scores.get)
tracking.log_params({"best_model": best})
from mlflow.models import infer_signature  # noqa: E402 - only needed here

signature = infer_signature(data["X_holdout"][:5], models[best].predict(data["X_holdout"][:5]))
tracking.log_model(
    models[best],
    name="model",
    signature=signature,
    input_example=data["X_holdout"][:2],
)
version = tracking.register_model(args.model_name, alias=args.alias)
report = {
    "best": best,
    "scores": scores,
    "model": args.model_name,
    "version": version,
    "alias": args.alias,
}
with open(args.report, "w") as handle:
    json.dump(report, handle, indent=2)
print(json.dumps(report))
