"""Value types shared by the spec's models: names (DNS-1123 labels) and parameters."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
Scalar = str | int | float | bool


def _check_parameter(value: Any) -> Any:
    scalars = (str, int, float, bool)
    if isinstance(value, scalars):
        return value
    if isinstance(value, list) and all(isinstance(v, scalars) for v in value):
        return value
    raise ValueError(
        f"got {type(value).__name__} {value!r}; a parameter must be a string, number, "
        "boolean or a list of them (pass structured data as an input artifact instead)"
    )


ParameterValue = Annotated[Scalar | list[Scalar], BeforeValidator(_check_parameter)]
Parameters = dict[str, ParameterValue]


def _check_name(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if len(value) > 63 or not DNS1123_LABEL.match(value):
        suggestion = re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-")[:63] or "my-name"
        raise ValueError(
            f"{value!r} is not a DNS-1123 label (lowercase letters, digits and '-', "
            f"starting and ending with a letter or digit, at most 63 characters); "
            f"try {suggestion!r}"
        )
    return value


Name = Annotated[str, BeforeValidator(_check_name)]
