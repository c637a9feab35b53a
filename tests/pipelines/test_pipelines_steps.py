"""``adapter_base.steps``: the model reference steps pass, reading and writing step artifacts, the
evaluate step's confusion matrix, the exit step (``finalize``) on a real local store, how every component starts."""

from __future__ import annotations

import ast
import inspect
import json
import math
import re
import textwrap
from types import SimpleNamespace

import pytest

from adapter_base import ArtifactManifest, Registry, ValidationError
from adapter_base.entities.model import ArtifactFile
from adapter_base.registry import layout
from adapter_base.steps.artifact_io import log_metrics, read_json, read_ref, write_output, write_ref
from adapter_base.steps.evaluate import square_confusion
from adapter_base.steps.finalize import finalize
from adapter_base.steps.model_ref import ModelRef, manifest_digest
from components import FUNCTIONS

CONFUSION = {"labels": ["a", "b"], "columns": ["a", "b", "<none>"], "rows": [[4, 1, 0], [1, 3, 1]]}


def test_square_confusion_adds_the_none_column_as_a_zero_row():
    categories, matrix = square_confusion(CONFUSION)
    assert categories == ["a", "b", "<none>"]
    assert matrix == [[4, 1, 0], [1, 3, 1], [0, 0, 0]]


def test_manifest_digest_pins_the_file_list():
    f1, f2 = ArtifactFile(path="a", size=1, sha256="0" * 64), ArtifactFile(path="b", size=1, sha256="1" * 64)
    d = manifest_digest(ArtifactManifest(model_id="m", version=1, files=[f1, f2]))
    assert d.startswith("sha256:") and d == manifest_digest(ArtifactManifest(model_id="m", version=2, files=[f2, f1]))
    assert d != manifest_digest(ArtifactManifest(model_id="m", version=1, files=[f1]))
    assert manifest_digest(None) == ""


def test_finalize_records_failure_keeps_a_step_message_and_leaves_success_alone(tmp_path):
    uri = str(tmp_path / "store")
    with Registry.open(uri) as registry:
        model = registry.create_model("m")
    assert "left as it is" in finalize("m", "run1", "SUCCEEDED", store_uri=uri)
    with Registry.open(uri) as registry:
        assert registry.get_model("m").status == "created"

    finalize("m", "run1", "FAILED", "Task exit-handler-1 failed.", store_uri=uri)
    with Registry.open(uri) as registry:
        m = registry.get_model("m")
        assert m.status == "failed" and m.status_message.startswith("run run1: pipeline failed: Task exit-handler-1 failed.")
        registry.set_status(model, "failed", "run run2: train: ValueError: exact cause")
    finalize("m", "run2", "FAILED", "generic", store_uri=uri)
    with Registry.open(uri) as registry:
        assert registry.get_model("m").status_message == "run run2: train: ValueError: exact cause"
    finalize("m", "run3", "CANCELLED", None, store_uri=uri)
    with Registry.open(uri) as registry:
        assert registry.get_model("m").status_message.startswith("run run3: pipeline cancelled")
    assert "cannot record" in finalize("no-such-model", "run4", "FAILED", "x", store_uri=uri)


# --- ModelRef and artifact_io -----------------------------------------------------------------


class MetricsSink:
    """A KFP ``Metrics`` artifact's ``log_metric``, recording what was logged."""

    def __init__(self) -> None:
        self.logged: dict[str, float] = {}

    def log_metric(self, metric: str, value: float) -> None:
        self.logged[metric] = value


def artifact(path) -> SimpleNamespace:
    return SimpleNamespace(path=str(path), metadata={})


def test_a_model_ref_round_trips_through_an_artifact_file_and_its_metadata(tmp_path):
    ref = ModelRef(model_id="m1", model_name="digits", version=3, store_uri="/s", digest="sha256:ab", run_id="r", base_version=2)
    out = artifact(tmp_path / "trained_model")
    write_ref(out, ref)
    assert read_ref(out) == ref
    assert out.metadata["version"] == 3 and out.metadata["model_name"] == "digits"
    assert json.loads((tmp_path / "trained_model").read_text())["base_version"] == 2


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"model_name": "m", "version": 1, "store_uri": "/s"}, "model_id"),
        ({"model_id": "i", "model_name": "m", "version": "1", "store_uri": "/s"}, "version"),
        ({"model_id": "i", "model_name": "m", "version": True, "store_uri": "/s"}, "version"),
        ({"model_id": "i", "model_name": "m", "version": 1, "store_uri": 5}, "store_uri"),
        ({"model_id": "i", "model_name": "m", "version": 1, "store_uri": "/s", "staged": "yes"}, "staged"),
        (["not", "an", "object"], "(root)"),
    ],
)
def test_a_bad_model_reference_is_refused_naming_the_field(data, field):
    with pytest.raises(ValidationError, match=rf"ModelRef\.{re.escape(field)}"):
        ModelRef.from_dict(data)


def test_an_unreadable_input_artifact_names_its_file(tmp_path):
    bad = tmp_path / "shards"
    bad.write_text("{truncated")
    with pytest.raises(ValidationError, match="shards"):
        read_json(artifact(bad))


def test_write_output_is_strict_json_with_the_chosen_metadata_and_metrics_are_finite_only(tmp_path):
    out = artifact(tmp_path / "report")
    write_output(out, {"shard": 0, "total": 5, "duration_s": math.nan, "failures": []}, metadata=("shard", "total", "missing"))
    assert json.loads((tmp_path / "report").read_text())["duration_s"] == "NaN"
    assert out.metadata == {"shard": 0, "total": 5}
    sink = MetricsSink()
    log_metrics(sink, {"total": 5, "failed": 0, "duration_s": math.nan, "ok": True, "run_id": "r"}, keys=("total", "failed", "duration_s", "ok"))
    assert sink.logged == {"failed": 0.0, "total": 5.0}



@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_component_starts_as_a_step_so_its_process_exits_when_done(name):
    """``start_step()`` is each component's first statement after its docstring and imports: logging, redaction,
    and an exit that threads the adapter left running cannot hold up."""
    [func] = ast.parse(textwrap.dedent(inspect.getsource(FUNCTIONS[name]))).body
    body = [node for node in func.body if not isinstance(node, (ast.Import, ast.ImportFrom))]
    first = body[1] if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) else body[0]
    assert ast.unparse(first) == "start_step()", f"component {name} starts with {ast.unparse(first)!r}"


@pytest.mark.parametrize("record", [[], "x", {"id": 3}, None])
def test_finalize_reports_instead_of_raising_on_a_model_record_it_cannot_read(tmp_path, record):
    uri = str(tmp_path / "store")
    with Registry.open(uri) as registry:
        model = registry.create_model("m")
        registry.store.put_json(layout.model_record(model.id), record)
    said = finalize("m", "run1", "FAILED", "Task exit-handler-1 failed.", store_uri=uri)
    assert said.startswith("run run1 failed; cannot record it") and "\n" not in said
