"""Strict-JSON encoding of metric dicts (NaN/Infinity as strings) and display formatting."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

_ENCODED = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _encode_float(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def json_safe(obj: Any) -> Any:
    """A copy of ``obj`` that ``json.dumps(..., allow_nan=False)`` accepts.

    Dicts, lists and tuples are walked (tuples become lists), numpy scalars and
    arrays become Python values and lists, and non-finite floats become the strings
    ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``. Dict keys that are numpy scalars
    become Python scalars. Other objects are returned unchanged.
    """
    if isinstance(obj, dict):
        return {
            (key.item() if isinstance(key, np.generic) else key): json_safe(value)
            for key, value in obj.items()
        }
    if isinstance(obj, (list, tuple)):
        return [json_safe(item) for item in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        return json_safe(obj.item())
    if isinstance(obj, float):
        return _encode_float(obj)
    return obj


def from_json_safe(obj: Any) -> Any:
    """Undo ``json_safe``: the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` become floats.

    Any value (not dict key) equal to one of those strings is decoded, so a label
    literally named ``"NaN"`` inside a list comes back as a float.
    """
    if isinstance(obj, dict):
        return {key: from_json_safe(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [from_json_safe(item) for item in obj]
    if isinstance(obj, str):
        return _ENCODED.get(obj, obj)
    return obj


def format_metric(value: Any, digits: int = 3) -> str:
    """Human-readable metric: ``"0.934"``, ``"12"``, ``"NaN"``, ``"Infinity"``, ``"n/a"`` for None.

    Accepts raw values and their ``json_safe`` encodings alike.
    """
    if value is None:
        return "n/a"
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        encoded = _encode_float(value)
        return encoded if isinstance(encoded, str) else f"{value:.{digits}f}"
    return str(value)
