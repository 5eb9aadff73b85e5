"""Train the digits classifier, on the clean training split plus any recent labelled rows.

Registers the model under ``--alias`` (``champion`` the first time; the agents ask for
``candidate`` when they retrain, and promote it only if it passes their gate).
"""

import argparse
import json

import numpy as np
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

from scanflow import tracking

parser = argparse.ArgumentParser()
parser.add_argument("--seed", type=int, default=42)
parser.add_argument("--trees", type=int, default=100)
parser.add_argument("--recent_data", default="", help=".npz with X and y (optional)")
parser.add_argument("--recent_weight", type=float, default=3.0, help="weight of recent rows")
parser.add_argument("--model_name", default="digits")
parser.add_argument("--alias", default="champion")
parser.add_argument("--report", required=True, help="output path (.json)")
args = parser.parse_args()

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_holdout, y_train, y_holdout = train_test_split(
    X, y, test_size=0.3, random_state=args.seed, stratify=y
)
weights = np.ones(len(y_train))
recent_rows = 0
if args.recent_data:  # what the service sees now counts more than the old training data
    recent = np.load(args.recent_data)
    recent_rows = len(recent["y"])
    X_train = np.vstack([X_train, recent["X"]])
    y_train = np.concatenate([y_train, recent["y"]])
    weights = np.concatenate([weights, np.full(recent_rows, args.recent_weight)])
model = RandomForestClassifier(n_estimators=args.trees, random_state=args.seed, n_jobs=1)
model.fit(X_train, y_train, sample_weight=weights)
holdout = float(model.score(X_holdout, y_holdout))
tracking.log_metrics({"holdout_accuracy": holdout, "recent_rows": recent_rows,
                      "train_rows": len(y_train)})
tracking.log_model(model, name="model", input_example=X_holdout[:2])
version = tracking.register_model(args.model_name, alias=args.alias)
report = {"version": version, "alias": args.alias, "holdout_accuracy": holdout,
          "recent_rows": recent_rows}
with open(args.report, "w") as handle:
    json.dump(report, handle)
print(json.dumps(report))
