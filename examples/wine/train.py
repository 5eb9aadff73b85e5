"""Train one classifier on the wine training rows (a DataFrame with named columns)."""

import argparse
import pickle

import pandas as pd
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

from scanflow import tracking

parser = argparse.ArgumentParser()
parser.add_argument("--model_type", choices=["boosting", "forest"], required=True)
parser.add_argument("--seed", type=int, default=7)
parser.add_argument("--dataset", required=True, help="input path (.parquet)")
parser.add_argument("--model", required=True, help="output path (pickle)")
args = parser.parse_args()

frame = pd.read_parquet(args.dataset)
train = frame[frame["split"] == "train"]
X, y = train.drop(columns=["target", "split"]), train["target"]
if args.model_type == "boosting":
    model = GradientBoostingClassifier(n_estimators=50, random_state=args.seed)
else:
    model = RandomForestClassifier(n_estimators=100, random_state=args.seed, n_jobs=1)
model.fit(X, y)
tracking.log_metric("train_accuracy", float(model.score(X, y)))
with open(args.model, "wb") as handle:
    pickle.dump(model, handle)
print(f"{args.model_type}: trained on {len(y)} rows")
