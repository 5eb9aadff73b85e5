"""Load scikit-learn's bundled wine data (13 named columns, no download) and split it.

Writes one Parquet file with a ``split`` column (train or holdout) to the ``dataset`` output.
"""

import argparse

from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split

from scanflow import tracking

parser = argparse.ArgumentParser()
parser.add_argument("--seed", type=int, default=7)
parser.add_argument("--holdout_size", type=float, default=0.25)
parser.add_argument("--dataset", required=True, help="output path (.parquet)")
args = parser.parse_args()

frame = load_wine(as_frame=True).frame
train, holdout = train_test_split(
    frame, test_size=args.holdout_size, random_state=args.seed, stratify=frame["target"]
)
frame = frame.assign(split="train")
frame.loc[holdout.index, "split"] = "holdout"
frame.to_parquet(args.dataset, index=False)
tracking.log_metrics({"rows_train": len(train), "rows_holdout": len(holdout)})
print(f"train={len(train)} holdout={len(holdout)}")
