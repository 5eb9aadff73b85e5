"""Train one classifier on the digits training split; log its test accuracy."""

import argparse
import pickle

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from scanflow import tracking

parser = argparse.ArgumentParser()
parser.add_argument("--model_type", choices=["logreg", "forest"], required=True)
parser.add_argument("--seed", type=int, default=42)
parser.add_argument("--dataset", required=True, help="input path (.npz)")
parser.add_argument("--model", required=True, help="output path (pickle)")
args = parser.parse_args()

data = np.load(args.dataset)
if args.model_type == "logreg":
    model = LogisticRegression(max_iter=2000, C=1.0)
else:
    model = RandomForestClassifier(n_estimators=200, random_state=args.seed, n_jobs=1)
model.fit(data["X_train"], data["y_train"])
accuracy = float(model.score(data["X_test"], data["y_test"]))
with open(args.model, "wb") as handle:
    pickle.dump(model, handle)
tracking.log_metric("test_accuracy", accuracy)
print(f"{args.model_type}: test accuracy {accuracy:.4f}")
