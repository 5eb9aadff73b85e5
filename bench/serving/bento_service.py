"""The BentoML 1.4 peer: the plain scikit-learn estimator behind a batchable API."""

import os

import bentoml
import joblib
import numpy as np


@bentoml.service(workers=int(os.environ.get("BENTO_WORKERS", "2")))
class Digits:
    def __init__(self) -> None:
        self.model = joblib.load(os.environ["DIGITS_JOBLIB"])

    @bentoml.api(batchable=True)
    def predict(self, input: np.ndarray) -> np.ndarray:
        return self.model.predict(input)
