"""Score both models on the holdout rows; log the better one with its column signature and
register it as ``wine@champion``."""

import argparse
import json
import pickle

import pandas as pd
from mlflow.models import infer_signature

from scanflow import tracking

parser = argparse.ArgumentParser()
parser.add_argument("--dataset", required=True)
parser.add_argument("--boosting", required=True)
parser.add_argument("--forest", required=True)
parser.add_argument("--model_name", default="wine")
parser.add_argument("--alias", default="champion")
parser.add_argument("--report", required=True, help="output path (.json)")
parser.add_argument("--seed", type=int, default=7)
args = parser.parse_args()

frame = pd.read_parquet(args.dataset)
holdout = frame[frame["split"] == "holdout"]
X, y = holdout.drop(columns=["target", "split"]), holdout["target"]
models, scores = {}, {}
for name in ("boosting", "forest"):
    with open(getattr(args, name), "rb") as handle:
        models[name] = pickle.load(handle)
    scores[name] = float(models[name].score(X, y))
    tracking.log_metric(f"holdout_accuracy_{name}", scores[name])
best = max(scores, key=scores.get)
tracking.log_params({"best_model": best})
# tree models log as they are: scikit-learn's own types are trusted by default
tracking.log_model(
    models[best],
    name="model",
    signature=infer_signature(X.head(5), models[best].predict(X.head(5))),
    input_example=X.head(2),
)
version = tracking.register_model(args.model_name, alias=args.alias)
report = {"best": best, "scores": scores, "model": args.model_name, "version": version}
with open(args.report, "w") as handle:
    json.dump(report, handle, indent=2)
print(json.dumps(report))
