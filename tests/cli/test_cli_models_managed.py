"""Issue 12, models managed from the shell: versions, aliases, predicting with a version, update, delete, train --dataset."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from adapter_base import Registry
from cli_support import ADAPTER, error_line, ok, run, trained_digits


def test_model_versions_list_created_metrics_and_aliases_and_aliases_promote_and_roll_back(capsys, tmp_path):
    store = str(tmp_path / "store")
    s = ("--store", store)
    trained_digits(capsys, store, versions=2)
    evaluated = ok(capsys, "evaluate", "mlp", "--dataset", "digits", *s)
    accuracy = float(re.search(r"evaluated mlp v2 on digits \(subset=test\): accuracy ([0-9.]+), macro_f1 ", evaluated).group(1))

    assert ok(capsys, "model", "alias", "set", "mlp", "production", "2", *s).strip() == "mlp: production -> version 2"
    lines = ok(capsys, "model", "versions", "mlp", *s).splitlines()
    assert lines[0].split() == ["VERSION", "CREATED", "LATEST", "EVALUATION", "ALIASES"]
    assert lines[1].startswith("v1 ") and re.search(r"\s+not evaluated\s+-$", lines[1])
    assert lines[2].startswith("v2 (current) ") and lines[2].endswith("production")
    assert f"accuracy {accuracy:#.4g}, macro_f1 " in lines[2] and ", count 9 on digits (subset=test)" in lines[2], "names the data it scored"
    rows = json.loads(ok(capsys, "model", "versions", "mlp", "--json", *s))
    assert [(r["version"], r["current"], r["aliases"]) for r in rows] == [(1, False, []), (2, True, ["production"])]
    assert rows[0]["latest_evaluation"] is None
    ev = rows[1]["latest_evaluation"]
    assert ev["dataset"] == "digits" and ev["filters"] == {"subset": "test"} and ev["metrics"]["count"] == 9
    assert ev["metrics"]["accuracy"] == pytest.approx(accuracy, abs=1e-4) and ev["report_uri"].endswith("/report.html")
    with Registry.open(store) as registry:
        created = [m.created_at for m in registry.list_versions(registry.get_model("mlp"))]
    assert [r["created_at"] for r in rows] == created

    # roll back: production -> 1, then remove it
    assert "production -> version 1 (was version 2)" in ok(capsys, "model", "alias", "set", "mlp", "production", "1", *s)
    assert ok(capsys, "model", "versions", "mlp", *s).splitlines()[1].endswith(" production")
    code, _, err = run(capsys, "model", "alias", "unset", "mlp", "production", "2", *s)
    assert code == 1 and "production points at version 1, not 2; nothing changed" in error_line(err)
    assert "removed alias production (was version 1)" in ok(capsys, "model", "alias", "unset", "mlp", "production", *s)
    with Registry.open(store) as registry:
        assert registry.get_model("mlp").aliases == {}
    code, _, err = run(capsys, "model", "alias", "set", "mlp", "production", "7", *s)
    assert code == 1 and "error: " in error_line(err)
    code, _, err = run(capsys, "model", "alias", "unset", "mlp", "staging", *s)
    assert code == 1 and "has no alias 'staging'" in error_line(err)


def test_predict_with_a_version_or_an_alias_loads_and_stamps_that_version(capsys, tmp_path):
    store = str(tmp_path / "store")
    s = ("--store", store)
    trained_digits(capsys, store, versions=2)
    ok(capsys, "model", "alias", "set", "mlp", "production", "1", *s)

    def versions_predicted() -> set[tuple[int, ...]]:
        """The versions each item has a set of (stamped with that version)."""
        with Registry.open(store) as registry:
            model = registry.get_model("mlp")
            items = registry.iter_items(registry.get_dataset("digits"), {"subset": "test"})
            return {tuple(registry.get_predictions(i, model.id, v).model_version for v in registry.prediction_versions(i, model.id)) for i in items}

    out = ok(capsys, "predict", "mlp", "--dataset", "digits", "--subset", "test", "--alias", "production", *s)
    assert "model mlp v1: 9 predicted" in out and versions_predicted() == {(1,)}
    out = ok(capsys, "predict", "mlp", "--dataset", "digits", "--subset", "test", "--version", "2", *s)
    assert "model mlp v2: 9 predicted" in out and versions_predicted() == {(1, 2)}
    out = ok(capsys, "predict", "mlp", "--dataset", "digits", "--subset", "test", "--version", "1", *s)
    assert "model mlp v1: 9 predicted" in out and versions_predicted() == {(1, 2)}, "each version's sets are its own"
    with Registry.open(store) as registry:
        assert registry.get_model("mlp").version == 2, "predicting with an older version changes nothing in the model"

    code, _, err = run(capsys, "predict", "mlp", "--dataset", "digits", "--alias", "staging", *s)
    assert code == 1 and "has no alias 'staging' (has: production" in error_line(err)
    code, _, err = run(capsys, "predict", "mlp", "--dataset", "digits", "--version", "3", *s)
    assert code == 1 and "has no version 3 (it has versions 1 to 2" in error_line(err)


def test_model_update_sets_configuration_and_dataset(capsys, tmp_path):
    store = str(tmp_path / "store")
    s = ("--store", store)
    trained_digits(capsys, store)
    ok(capsys, "dataset", "import", "digits", "--name", "more-digits", "--limit", "30", *s)
    with Registry.open(store) as registry:
        before = registry.get_model("mlp").configuration
    out = ok(capsys, "model", "update", "mlp", "--config", "epochs=3", "lr=0.5", "--dataset", "more-digits", *s)
    assert out.startswith("updated model mlp (") and "configuration epochs=3, lr=0.5" in out and "dataset more-digits" in out
    with Registry.open(store) as registry:
        model = registry.get_model("mlp")
        assert model.configuration == {**before, "epochs": 3, "lr": 0.5} and before["seed"] == 1, "other keys are kept"
        assert model.dataset_id == registry.get_dataset("more-digits").id and model.version == 1
    out = ok(capsys, "train", "mlp", *s)
    assert "version 2" in out
    code, _, err = run(capsys, "model", "update", "mlp", *s)
    assert code == 1 and "nothing to change" in error_line(err)


def test_train_with_a_dataset_option(capsys, tmp_path):
    store = str(tmp_path / "store")
    s = ("--store", store)
    ok(capsys, "dataset", "import", "digits", "--limit", "60", *s)
    ok(capsys, "dataset", "import", "digits", "--name", "other", "--limit", "40", *s)
    ok(capsys, "model", "create", "--name", "bare", "--adapter", ADAPTER, "--config", "epochs=1", *s)  # no dataset, no labels
    assert "version 1" in ok(capsys, "train", "bare", "--dataset", "digits", *s)
    with Registry.open(store) as registry:
        model = registry.get_model("bare")
        digits = registry.get_dataset("digits")
        assert model.dataset_id == digits.id and model.labels == digits.labels, "a model without a dataset takes it"
    assert "version 2" in ok(capsys, "train", "bare", "--dataset", "other", *s)
    with Registry.open(store) as registry:
        assert registry.get_model("bare").dataset_id == digits.id, "a model with a dataset keeps it"
    code, _, err = run(capsys, "train", "bare", "--dataset", "nope", *s)
    assert code == 1 and "no dataset named or with id 'nope'" in error_line(err)


def test_model_delete_asks_for_yes_when_not_interactive(capsys, tmp_path):
    store = str(tmp_path / "store")
    s = ("--store", store)
    trained_digits(capsys, store)
    exe = Path(sys.executable).parent / "model-adapter"
    proc = subprocess.run([str(exe), "model", "delete", "mlp", *s], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "not interactive: pass --yes" in error_line(proc.stderr)
    with Registry.open(store) as registry:
        assert registry.get_model("mlp").version == 1, "nothing deleted"
    out = ok(capsys, "model", "delete", "mlp", "--yes", *s)
    assert re.match(r"deleted model mlp \(\w+\) and its 1 version\(s\)", out)
    code, _, err = run(capsys, "model", "show", "mlp", *s)
    assert code == 1 and "no model named or with id 'mlp'" in error_line(err)
    with Registry.open(store) as registry:
        assert list(registry.store.list("models/")) == []


def test_dataset_delete_refuses_while_a_model_trains_on_it_unless_forced(capsys, tmp_path):
    store = str(tmp_path / "store")
    s = ("--store", store)
    trained_digits(capsys, store)
    code, _, err = run(capsys, "dataset", "delete", "digits", "--yes", *s)
    assert code == 1 and "is the training dataset of model(s) mlp" in error_line(err) and "--force" in err
    code, _, err = run(capsys, "dataset", "delete", "digits", "--force", *s)  # pytest's stdin is not a terminal
    assert code == 1 and "pass --yes" in error_line(err)
    with Registry.open(store) as registry:
        ds_id = registry.get_dataset("digits").id
    out = ok(capsys, "dataset", "delete", "digits", "--force", "--yes", *s)
    assert "model mlp no longer has a training dataset" in out and f"deleted dataset digits ({ds_id})" in out
    assert ok(capsys, "dataset", "list", *s).startswith("no datasets in ")
    assert json.loads(ok(capsys, "dataset", "list", "--json", *s)) == []
    with Registry.open(store) as registry:
        assert registry.get_model("mlp").dataset_id is None
        assert list(registry.store.list(f"datasets/{ds_id}/")) == []

    ok(capsys, "dataset", "import", "digits", "--name", "spare", "--limit", "20", *s)
    assert "deleted dataset spare" in ok(capsys, "dataset", "delete", "spare", "--yes", *s)
