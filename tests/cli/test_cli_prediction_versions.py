"""Issue 23.5: prediction sets are kept per model version; export, show, resume and delete name the version."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from adapter_base import Registry
from adapter_base.registry import layout
from cli_support import error_line, ok, run, trained_digits

TEST = ("--dataset", "digits", "--subset", "test")


def stored(store: str) -> dict[str, dict[int, str]]:
    """``{item_id: {version: run_id}}`` of model mlp's prediction sets on the test subset."""
    with Registry.open(store) as registry:
        model = registry.get_model("mlp")
        out = {}
        for item in registry.iter_items(registry.get_dataset("digits"), {"subset": "test"}):
            out[item.id] = {v: registry.get_predictions(item, model.id, v).run_id for v in registry.prediction_versions(item, model.id)}
        return out


def export(capsys, store: str, tmp_path: Path, *extra: str, fmt: str = "jsonl") -> tuple[str, list[dict]]:
    path = tmp_path / f"export-{len(list(tmp_path.iterdir()))}.{fmt}"
    out = ok(capsys, "predictions", "export", "mlp", *TEST, "--format", fmt, "-o", str(path), "--store", store, *extra)
    rows = list(csv.DictReader(path.open())) if fmt == "csv" else [json.loads(line) for line in path.read_text().splitlines()]
    return out, rows


def test_predicting_an_older_version_keeps_the_newer_versions_predictions_and_export_and_show_name_the_version(capsys, tmp_path):
    store = str(tmp_path / "store")
    s = ("--store", store)
    trained_digits(capsys, store, versions=2)
    ok(capsys, "model", "alias", "set", "mlp", "production", "1", *s)
    assert "model mlp v2: 9 predicted" in ok(capsys, "predict", "mlp", *TEST, *s)
    v2_runs = {item: runs[2] for item, runs in stored(store).items()}
    assert "model mlp v1: 9 predicted" in ok(capsys, "predict", "mlp", *TEST, "--alias", "production", *s)
    sets = stored(store)
    assert all(sorted(runs) == [1, 2] and runs[2] == v2_runs[item] for item, runs in sets.items()), "v2's sets are untouched"

    out, rows = export(capsys, store, tmp_path)  # default: the latest version predicted
    assert "on 9 of 9 item(s)" in out and "(jsonl, model version 2)" in out
    assert {r["model_version"] for r in rows} == {2} and {r["run_id"] for r in rows} == set(v2_runs.values())
    out, rows = export(capsys, store, tmp_path, "--version", "1", fmt="csv")
    assert "on 9 of 9 item(s)" in out and "(csv, model version 1)" in out and {r["model_version"] for r in rows} == {"1"}

    item_id = next(iter(sets))
    shown = json.loads(ok(capsys, "predictions", "show", item_id, "--dataset", "digits", "--model", "mlp", "--version", "1", *s))
    assert [p["model_version"] for p in shown["predictions"]] == [1]
    shown = json.loads(ok(capsys, "predictions", "show", item_id, "--dataset", "digits", *s))
    assert [p["model_version"] for p in shown["predictions"]] == [2], "default: each model's latest version"
    code, _, err = run(capsys, "predictions", "show", item_id, "--dataset", "digits", "--version", "1", *s)
    assert code == 1 and "--version" in error_line(err) and "--model" in error_line(err)

    v1_runs = {item: runs[1] for item, runs in stored(store).items()}
    assert "evaluated mlp v2 on digits" in ok(capsys, "evaluate", "mlp", "--dataset", "digits", *s)
    sets = stored(store)
    assert all(runs[1] == v1_runs[item] and runs[2] != v2_runs[item] for item, runs in sets.items()), "evaluating v2 leaves v1's sets"
    v2_runs = {item: runs[2] for item, runs in sets.items()}

    out = ok(capsys, "predictions", "delete", "mlp", "--dataset", "digits", "--version", "1", *s)
    assert "deleted 9 prediction set(s) of mlp v1 on dataset digits; version(s) 2 keep theirs" in out
    assert {item: runs for item, runs in stored(store).items()} == {item: {2: run} for item, run in v2_runs.items()}
    out, rows = export(capsys, store, tmp_path, "--version", "1")
    assert rows == [] and "9 item(s) have no predictions from this model at version 1" in out


def test_resume_is_per_version_and_a_set_at_a_version_key_naming_another_version_is_not_done(capsys, tmp_path):
    store = str(tmp_path / "store")
    s = ("--store", store)
    trained_digits(capsys, store, versions=2)
    ok(capsys, "predict", "mlp", *TEST, "--version", "1", *s)
    out = ok(capsys, "predict", "mlp", *TEST, "--version", "2", "--resume", *s)
    assert re.search(r"\b9 predicted, 0 already done", out), "v1's sets are no v2 completion"
    out = ok(capsys, "predict", "mlp", *TEST, "--version", "1", "--resume", *s)
    assert re.search(r"\b0 predicted, 9 already done", out), out

    with Registry.open(store) as registry:  # a v1 set copied to the v2 key of one item
        model = registry.get_model("mlp")
        item = next(registry.iter_items(registry.get_dataset("digits"), {"subset": "test"}))
        registry.store.put_bytes(
            layout.predictions(item.dataset_id, item.id, model.id, 2), registry.store.get_bytes(layout.predictions(item.dataset_id, item.id, model.id, 1))
        )
    out = ok(capsys, "predict", "mlp", *TEST, "--version", "2", "--resume", *s)
    assert re.search(r"\b1 predicted, 8 already done", out), out
    assert all(sorted(runs) == [1, 2] for runs in stored(store).values())
    with Registry.open(store) as registry:
        assert registry.get_predictions(item, model.id, 2).model_version == 2


def test_sets_of_the_previous_layout_read_as_their_version_and_model_delete_removes_every_version(capsys, tmp_path):
    store = str(tmp_path / "store")
    s = ("--store", store)
    trained_digits(capsys, store, versions=2)
    ok(capsys, "predict", "mlp", *TEST, "--version", "1", *s)
    with Registry.open(store) as registry:  # move v1's sets where the previous layout kept them
        model = registry.get_model("mlp")
        for item in registry.iter_items(registry.get_dataset("digits"), {"subset": "test"}):
            new = layout.predictions(item.dataset_id, item.id, model.id, 1)
            registry.store.put_bytes(layout.legacy_predictions(item.dataset_id, item.id, model.id), registry.store.get_bytes(new))
            registry.store.delete(new)
    assert all(list(runs) == [1] for runs in stored(store).values())
    out = ok(capsys, "predict", "mlp", *TEST, "--version", "1", "--resume", *s)
    assert re.search(r"\b0 predicted, 9 already done", out), out
    ok(capsys, "predict", "mlp", *TEST, "--version", "2", *s)
    assert all(sorted(runs) == [1, 2] for runs in stored(store).values()), "the old set is kept beside v2's"
    out, rows = export(capsys, store, tmp_path, "--version", "1")
    assert "on 9 of 9 item(s)" in out and "model version 1)" in out and {r["model_version"] for r in rows} == {1}

    ok(capsys, "model", "delete", "mlp", "--yes", *s)
    with Registry.open(store) as registry:
        keys = [o.key for o in registry.store.list(layout.annotations_prefix(registry.get_dataset("digits").id))]
        assert keys and not [k for k in keys if "/predictions/" in k], "every version's sets and the old ones go"
