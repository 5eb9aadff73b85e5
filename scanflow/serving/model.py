"""Loading an MLflow model from a local directory into something that predicts batches.

Two ways to predict, chosen from the model's ``MLmodel`` file:

- :class:`EstimatorModel`: the scikit-learn flavor without custom code. The estimator is
  called directly on numpy arrays (no pandas, no pyfunc wrapper): the fast path.
- :class:`PyfuncModel`: any other MLflow model, through ``mlflow.pyfunc`` (the general path).

Either way a model gets a smoke prediction on an input built from its signature before it
is handed out, so a model that cannot predict never takes traffic.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scanflow.serving.columns import layout_of
from scanflow.serving.errors import ModelLoadError
from scanflow.serving.resolve import read_mlmodel
from scanflow.serving.signature import ColumnSpec, Signature, TensorSpec, parse_signature

logger = logging.getLogger(__name__)

# What a model predicts on: one array (single tensor) or named arrays (columns or tensors),
# all with the same number of rows.
ModelInput = np.ndarray | dict[str, np.ndarray]


def rows_of(data: ModelInput) -> int:
    """Number of rows in a model input."""
    if isinstance(data, dict):
        return len(next(iter(data.values()))) if data else 0
    return int(data.shape[0]) if data.ndim else 1


def concat_inputs(parts: list[ModelInput]) -> ModelInput:
    """Stack the inputs of several requests along the row axis."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    if isinstance(first, dict):
        return {k: np.concatenate([p[k] for p in parts]) for k in first}
    return np.concatenate(parts)  # type: ignore[arg-type]


def split_output(output: Any, sizes: list[int]) -> list[Any]:
    """Cut a batch's output back into one piece per request (``sizes`` rows each)."""
    if len(sizes) == 1:
        return [output]
    pieces, start = [], 0
    for n in sizes:
        if isinstance(output, dict):
            pieces.append({k: v[start : start + n] for k, v in output.items()})
        elif hasattr(output, "iloc"):
            pieces.append(output.iloc[start : start + n])
        else:
            pieces.append(output[start : start + n])
        start += n
    return pieces


def normalise_output(output: Any) -> Any:
    """A model output as a numpy array, a dict of arrays, or a pandas DataFrame."""
    if isinstance(output, np.ndarray | dict):
        return output
    if hasattr(output, "to_frame") and hasattr(output, "to_numpy"):  # pandas Series
        return output.to_numpy()
    if hasattr(output, "iloc"):  # DataFrame
        return output
    return np.asarray(output)


@dataclass
class LoadedModel:
    """A model ready to predict batches; ``inline`` models are cheap enough for the event loop."""

    name: str
    version: str
    path: Path
    signature: Signature
    flavor: str
    inline: bool
    loaded_at: float = field(default_factory=time.time)

    def predict(self, data: ModelInput) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What status endpoints report about this model."""
        return {
            "name": self.name,
            "version": self.version,
            "path": str(self.path),
            "flavor": self.flavor,
            "loaded_at": self.loaded_at,
        }


def _as_frame(data: ModelInput, signature: Signature) -> Any:
    """A batch as one DataFrame for a column model (other inputs are returned as they are)."""
    layout = layout_of(signature)
    if layout is not None and (isinstance(data, dict) or data.ndim == 2):
        return layout.frame(data)
    if isinstance(data, dict):
        import pandas as pd

        return pd.DataFrame(data)
    return data


@dataclass
class EstimatorModel(LoadedModel):
    """A scikit-learn estimator called directly (``predict_fn`` of the flavor, on numpy).

    ``on_array``: the estimator was fitted on a DataFrame with exactly the signature's
    columns, in order, all of one numeric type; it is then called on the batch's 2-D array
    (columns in that order, names checked when the request was decoded) with no DataFrame.
    """

    estimator: Any = None
    predict_fn: str = "predict"
    on_array: bool = False

    def predict(self, data: ModelInput) -> Any:
        fn = getattr(self.estimator, self.predict_fn)
        if self.on_array and isinstance(data, np.ndarray):
            with warnings.catch_warnings():  # "X does not have valid feature names"
                warnings.simplefilter("ignore", UserWarning)
                return normalise_output(fn(data))
        if isinstance(data, dict) or hasattr(self.estimator, "feature_names_in_"):
            data = _as_frame(data, self.signature)
        return normalise_output(fn(data))


def array_path_agrees(model: EstimatorModel) -> bool:
    """Whether ``model`` may take its column batches as a bare 2-D array: its estimator
    learnt exactly the signature's columns in order, the columns share one numeric dtype,
    and on smoke rows the array and the DataFrame give the same output."""
    layout = layout_of(model.signature)
    names = getattr(model.estimator, "feature_names_in_", None)
    if layout is None or layout.dense is None or names is None:
        return False
    if [str(n) for n in names] != list(layout.names):
        return False
    from scanflow.serving import lean

    rng = np.random.default_rng(0)
    rows = rng.integers(0, 3, size=(4, layout.width)).astype(layout.dense)
    fn = getattr(model.estimator, model.predict_fn)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            got = np.asarray(normalise_output(fn(rows)))
        if lean.keeps_out("pandas"):  # pandas is kept out of this worker: the array must do
            return True
        expected = np.asarray(normalise_output(fn(layout.frame(rows))))
    except Exception as exc:
        logger.info("model %s: estimator not called on arrays (%s)", model.name, exc)
        return False
    if got.shape != expected.shape:
        return False
    if got.dtype.kind in "fc" and expected.dtype.kind in "fc":
        return bool(np.allclose(got, expected))
    return bool(np.array_equal(got, expected))


@dataclass
class PyfuncModel(LoadedModel):
    """Any MLflow model through ``mlflow.pyfunc`` (DataFrame or tensor inputs)."""

    pyfunc: Any = None

    def predict(self, data: ModelInput) -> Any:
        if self.signature.is_columns or (isinstance(data, dict) and not self.signature.is_tensor):
            data = _as_frame(data, self.signature)
        return normalise_output(self.pyfunc.predict(data))


def _load_estimator(path: Path, conf: dict[str, Any]) -> Any:
    pickled = path / conf.get("pickled_model", "model.pkl")
    if conf.get("serialization_format") == "skops":
        from scanflow.serving import skops_trust

        return skops_trust.load(pickled, trusted=conf.get("skops_trusted_types"))
    import mlflow.sklearn  # pickle formats: MLflow's own loader and its safety switches

    return mlflow.sklearn.load_model(str(path))


def load_model(
    path: str | Path, *, name: str, version: str, fast: bool = True, smoke: bool = True
) -> LoadedModel:
    """Load the MLflow model in ``path``; raises :class:`ModelLoadError` with the reason.

    With ``smoke`` (the default) it predicts once on :func:`smoke_input` before it is
    returned; a caller passing False runs :func:`smoke_test` itself."""
    from scanflow.serving import lean

    path = Path(path)
    mlmodel = read_mlmodel(path)
    lean.only_needed(mlmodel, fast)
    flavors = mlmodel.get("flavors") or {}
    signature = parse_signature(mlmodel)
    sk = flavors.get("sklearn")
    pyfunc_conf = flavors.get("python_function") or {}
    try:
        if fast and sk and not sk.get("code") and not pyfunc_conf.get("code"):
            estimator = _load_estimator(path, sk)
            predict_fn = pyfunc_conf.get("predict_fn") or "predict"
            direct = EstimatorModel(
                name=name,
                version=version,
                path=path,
                signature=signature,
                flavor="sklearn",
                inline=True,
                estimator=estimator,
                predict_fn=predict_fn,
            )
            direct.on_array = array_path_agrees(direct)
            if not direct.on_array and signature.is_columns and lean.keeps_out("pandas"):
                lean.let_in(["pandas"])  # this estimator takes DataFrames after all
            model: LoadedModel = direct
        else:
            if not pyfunc_conf:
                raise ModelLoadError(
                    f"model at {path} has no python_function flavor "
                    f"(flavors: {', '.join(flavors) or 'none'}); log it with an MLflow flavor "
                    "that supports pyfunc"
                )
            import mlflow.pyfunc

            from scanflow.serving import skops_trust

            skops_trust.trust_all()  # MLflow's loader expects skops's default list
            model = PyfuncModel(
                name=name,
                version=version,
                path=path,
                signature=signature,
                flavor="pyfunc",
                inline=False,
                pyfunc=mlflow.pyfunc.load_model(str(path)),
            )
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"cannot load model version {version} from {path}: {exc}") from exc
    if smoke:
        smoke_test(model)
    logger.info(
        "loaded model %s version %s (%s path) from %s",
        name,
        version,
        ("direct on arrays" if getattr(model, "on_array", False) else "direct")
        if model.inline
        else "pyfunc",
        path,
    )
    return model


def smoke_input(signature: Signature) -> ModelInput | None:
    """One row of zeros (empty strings for text) shaped by the signature; None without one."""
    if not signature.inputs:
        return None

    def zeros(dtype: str, shape: tuple[int, ...]) -> np.ndarray:
        dims = tuple(1 if d < 0 else d for d in shape) or (1,)
        if np.dtype(dtype) == np.dtype(object):
            return np.full(dims, "", dtype=object)
        return np.zeros(dims, dtype=dtype)

    if signature.is_tensor and len(signature.inputs) == 1:
        spec = signature.inputs[0]
        assert isinstance(spec, TensorSpec)
        return zeros(spec.dtype, spec.shape)
    layout = layout_of(signature)
    if layout is not None and layout.dense is not None:  # as requests arrive: one array
        return np.zeros((1, layout.width), dtype=layout.dense)
    out: dict[str, np.ndarray] = {}
    for spec in signature.inputs:
        if isinstance(spec, ColumnSpec) and not spec.required:
            continue
        out[spec.name] = zeros(spec.dtype, spec.shape)
    return out


def example_input(path: Path, signature: Signature) -> ModelInput | None:
    """The first row of the input example logged with the model, shaped as requests are
    (None when there is none, or it does not fit the signature)."""
    import json

    info = read_mlmodel(path).get("saved_input_example_info") or {}
    try:
        example = json.loads((path / info["artifact_path"]).read_text())
    except (KeyError, OSError, ValueError):
        return None
    try:
        if info.get("type") == "ndarray" and signature.is_tensor and len(signature.inputs) == 1:
            spec = signature.inputs[0]
            assert isinstance(spec, TensorSpec)
            return np.asarray(example, dtype=spec.dtype)[:1]
        layout = layout_of(signature)
        if info.get("type") != "dataframe" or layout is None or not example.get("data"):
            return None
        row = dict(zip(example["columns"], example["data"][0], strict=True))
        columns = {
            name: np.asarray([row[name]], dtype=dtype)
            for name, dtype in zip(layout.names, layout.dtypes, strict=True)
            if name in row
        }
        if layout.dense is not None and len(columns) < layout.width:
            return None
        return layout.pack(columns)
    except (TypeError, ValueError, KeyError, AttributeError):
        logger.debug("input example of %s does not fit its signature", path, exc_info=True)
        return None


INLINE_BUDGET_SECONDS = 0.001  # slower calls run off the event loop, which batches meanwhile
_clock = time.perf_counter


def _keep_inline_if_cheap(model: LoadedModel, data: ModelInput) -> None:
    """Predict off the event loop when one call costs more than the budget (the fastest of
    three, so a busy machine does not decide it): while a slow model computes, the loop
    reads the next requests, and they form the next batch."""
    costs = []
    for _ in range(3):
        started = _clock()
        model.predict(data)
        costs.append(_clock() - started)
    if min(costs) > INLINE_BUDGET_SECONDS:
        model.inline = False
        logger.info(
            "model %s version %s takes %.1f ms per call: predicting off the event loop",
            model.name,
            model.version,
            min(costs) * 1000,
        )


def smoke_test(model: LoadedModel) -> None:
    """Predict once on the model's logged input example (its first row), else on
    :func:`smoke_input`; raise :class:`ModelLoadError` if that fails."""
    data = example_input(model.path, model.signature)
    what = "its logged input example"
    if data is None:
        data, what = smoke_input(model.signature), "one row of zeros"
    if data is None:
        logger.warning(
            "model %s version %s has no signature: smoke prediction skipped",
            model.name,
            model.version,
        )
        return
    try:
        model.predict(data)
        if model.inline:
            _keep_inline_if_cheap(model, data)
    except Exception as exc:
        hint = "" if what != "one row of zeros" else " (log an input example with the model)"
        raise ModelLoadError(
            f"model {model.name} version {model.version} failed its smoke prediction on "
            f"{what}: {type(exc).__name__}: {exc}{hint}"
        ) from exc
