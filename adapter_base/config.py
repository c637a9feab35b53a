"""Adapter configuration: framework defaults < adapter defaults < model configuration."""

from __future__ import annotations

from typing import Any, Mapping

from .errors import ValidationError

#: Keys the framework itself reads; adapters add their own. What each prediction knob
#: means is documented on ``adapter_base.prediction.PredictionOptions``.
FRAMEWORK_DEFAULTS: dict[str, Any] = {
    "batch_size": 16,
    "prefetch_batches": 4,
    "io_workers": 16,
    "io_chunk": 4,
    # Prediction's threads and processes: None sizes them from the CPUs and the store (PredictionOptions).
    "prepare_workers": None,
    "write_workers": None,
    "decode_processes": None,
    "prepare_in_processes": None,
    "write_in_processes": None,
    "adaptive_prefetch": True,
    "predict_timeout_s": None,
    # A load() still running after this long fails the command or step (None: wait forever).
    "load_timeout_s": 3600,
    # A prepare_item_func call still running after this long fails its item (None: wait forever).
    "prepare_timeout_s": 300,
    # Prepared inputs waiting for predict, and images being decoded for them (all that decoding
    # holds), hold at most about this many bytes; a larger item fails.
    "prepared_bytes_budget": 512 * 1024 * 1024,
    "adaptive_batch_size": True,
    # A run whose first this many predict calls all fail with the same error stops there (0 or None: never).
    "fail_fast_batches": 3,
    "device": "auto",
}


def merge_configuration(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Merge layers left to right (later wins), nested dicts merged key by key."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            if isinstance(value, Mapping) and isinstance(out.get(key), dict):
                out[key] = merge_configuration(out[key], value)
            else:
                out[key] = value
    return out


def positive_or_none(cfg: Mapping[str, Any], key: str) -> float | None:
    """A positive number from the configuration, or None when it is unset, 0 or None (off); anything else is an error naming ``key``."""
    value = cfg.get(key)
    if value is None or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValidationError("configuration", key, f"must be a positive number or null, got {value!r}")
    return value


def resolve_device(requested: str | None) -> str:
    """``requested`` unless it is ``auto``/empty: then ``cuda`` when PyTorch sees a GPU, else ``cpu``."""
    if requested and requested != "auto":
        return requested
    import importlib.util

    if importlib.util.find_spec("torch") is not None:
        import torch

        if torch.cuda.is_available():
            return "cuda"
    return "cpu"
