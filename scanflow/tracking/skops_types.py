"""Which types a scikit-learn model saved with skops may load: scikit-learn's own by default.

skops refuses to load any type it does not trust unless told to; tree models (random
forests, gradient boosting) hold ``sklearn.tree._tree.Tree`` objects, which skops does not
trust by default. Types that live in scikit-learn, NumPy or SciPy are trusted here; any
other type must be named by the caller.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from scanflow.errors import TrackingError

TRUSTED_PACKAGES = ("sklearn", "numpy", "scipy")


def untrusted_types(model: Any) -> list[str]:
    """The types skops would refuse to load from ``model``'s dump."""
    import skops.io

    try:
        data = skops.io.dumps(model)
    except Exception as exc:  # noqa: BLE001 - skops cannot serialize this object at all
        raise TrackingError(
            f"cannot serialize the {type(model).__name__} model with skops: "
            f"{type(exc).__name__}: {exc}; save it with serialization_format='cloudpickle' "
            "(log_model(model, serialization_format='cloudpickle')) if you trust its code"
        ) from exc
    return sorted(skops.io.get_untrusted_types(data=data))


def trusted_types(model: Any, extra: Iterable[str] = ()) -> list[str]:
    """The types to trust when loading ``model``: its scikit-learn/NumPy/SciPy types and ``extra``.

    Raises :class:`TrackingError` naming the types that remain untrusted and how to trust them.
    """
    extra = list(extra)
    found = untrusted_types(model)
    refused = [t for t in found if t not in extra and t.split(".")[0] not in TRUSTED_PACKAGES]
    if refused:
        listed = ", ".join(refused)
        raise TrackingError(
            f"cannot serialize the {type(model).__name__} model: skops does not trust the "
            f"type(s) {listed}. If loading them is safe, pass them to log_model, e.g. "
            f"log_model(model, skops_trusted_types={refused!r}). Nothing was logged"
        )
    return sorted(set(found) | set(extra))
