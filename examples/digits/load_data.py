"""Load scikit-learn's bundled digits (8x8 images, no download) and split it.

Writes one .npz file with train, test and holdout parts to the ``dataset`` output.
"""

import argparse

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from scanflow import tracking

parser = argparse.ArgumentParser()
parser.add_argument("--seed", type=int, default=42)
parser.add_argument("--test_size", type=float, default=0.25)
parser.add_argument("--holdout_size", type=float, default=0.2)
parser.add_argument("--dataset", required=True, help="output path (.npz)")
args = parser.parse_args()

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_rest, X_hold, y_rest, y_hold = train_test_split(
    X, y, test_size=args.holdout_size, random_state=args.seed, stratify=y
)
X_train, X_test, y_train, y_test = train_test_split(
    X_rest, y_rest, test_size=args.test_size, random_state=args.seed, stratify=y_rest
)
with open(args.dataset, "wb") as handle:
    np.savez_compressed(
        handle,
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        X_holdout=X_hold,
        y_holdout=y_hold,
    )
tracking.log_metrics(
    {"rows_train": len(y_train), "rows_test": len(y_test), "rows_holdout": len(y_hold)}
)
print(f"train={len(y_train)} test={len(y_test)} holdout={len(y_hold)}")
