"""``PredictionOptions``: every knob has a framework default, bad configuration names its key."""

from __future__ import annotations

import ast
import dataclasses
import inspect

import pytest

from adapter_base import PredictionOptions, Registry, ValidationError
from adapter_base.config import FRAMEWORK_DEFAULTS
from adapter_base.prediction import options
from adapter_base.storage import LocalStore


def test_every_knob_is_a_framework_default_with_the_same_value():
    assert PredictionOptions().to_configuration() == {k: FRAMEWORK_DEFAULTS[k] for k in PredictionOptions().to_configuration()}
    assert PredictionOptions.from_configuration(FRAMEWORK_DEFAULTS) == PredictionOptions()


def test_every_knob_has_a_docstring():
    tree = ast.parse(inspect.getsource(options))
    body = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "PredictionOptions").body
    documented = {
        stmt.target.id
        for stmt, after in zip(body, body[1:])
        if isinstance(stmt, ast.AnnAssign) and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
    }
    assert documented == {f.name for f in dataclasses.fields(PredictionOptions)}


def test_registry_io_pool_defaults_to_the_engines_io_workers(tmp_path):
    with Registry(LocalStore(tmp_path / "store")) as registry:
        assert registry.io_workers == PredictionOptions().io_workers == FRAMEWORK_DEFAULTS["io_workers"]


def test_the_batch_size_argument_wins_over_the_configuration():
    cfg = {**FRAMEWORK_DEFAULTS, "batch_size": 8}
    assert PredictionOptions.from_configuration(cfg).batch_size == 8
    assert PredictionOptions.from_configuration(cfg, batch_size=3).batch_size == 3
    assert PredictionOptions.from_configuration(cfg, batch_size=0).batch_size == 8  # 0: not given
    assert PredictionOptions.from_configuration({}).batch_size == FRAMEWORK_DEFAULTS["batch_size"]


def test_a_negative_batch_size_is_refused():
    with pytest.raises(ValidationError, match=r"predict\.batch_size: must be >= 1, got -2"):
        PredictionOptions.from_configuration({}, batch_size=-2)


@pytest.mark.parametrize("key", ["prefetch_batches", "io_workers", "io_chunk"])
def test_counts_unset_null_or_zero_take_the_default_and_are_at_least_one(key):
    for value in (None, 0):
        assert getattr(PredictionOptions.from_configuration({key: value}), key) == FRAMEWORK_DEFAULTS[key]
    assert getattr(PredictionOptions.from_configuration({key: -5}), key) == 1
    assert getattr(PredictionOptions.from_configuration({key: "3"}), key) == 3
    with pytest.raises(ValidationError, match=rf"configuration\.{key}: must be a whole number, got 'many'"):
        PredictionOptions.from_configuration({key: "many"})


@pytest.mark.parametrize("key", ["predict_timeout_s", "prepare_timeout_s", "prepared_bytes_budget"])
def test_limits_null_or_zero_mean_none_and_bad_values_name_the_key(key):
    assert getattr(PredictionOptions.from_configuration({key: None}), key) is None
    assert getattr(PredictionOptions.from_configuration({key: 0}), key) is None
    assert getattr(PredictionOptions.from_configuration({key: 2}), key) == 2
    for bad in (-1, "10", True):
        with pytest.raises(ValidationError, match=rf"configuration\.{key}: must be a positive number or null, got {bad!r}"):
            PredictionOptions.from_configuration({key: bad})


def test_switches_default_on_and_follow_the_configuration():
    assert PredictionOptions.from_configuration({}).adaptive_prefetch is True
    assert PredictionOptions.from_configuration({}).adaptive_batch_size is True
    off = PredictionOptions.from_configuration({"adaptive_prefetch": False, "adaptive_batch_size": False})
    assert (off.adaptive_prefetch, off.adaptive_batch_size) == (False, False)


def test_options_are_frozen_and_checked_when_built_directly():
    opts = PredictionOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.batch_size = 2  # type: ignore[misc]
    with pytest.raises(ValidationError, match=r"PredictionOptions\.io_workers: must be a whole number >= 1, got 0"):
        PredictionOptions(io_workers=0)
    with pytest.raises(ValidationError, match=r"PredictionOptions\.predict_timeout_s: must be a positive number or None, got -1"):
        PredictionOptions(predict_timeout_s=-1)
