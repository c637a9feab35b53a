"""Issue 23, points 9 and 12: the commands users reach for (clone, items, evaluations) and output people and scripts read."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlparse

from PIL import Image

from adapter_base import Registry
from cli_support import error_line, ok, run, trained_digits


def test_model_clone_copies_the_chosen_version_into_a_new_model(capsys, tmp_path):
    store = str(tmp_path / "store")
    s = ("--store", store)
    trained_digits(capsys, store, versions=2)
    out = ok(capsys, "model", "clone", "mlp", "mlp-first", "--version", "1", *s)
    assert re.fullmatch(r"cloned model mlp version 1 as mlp-first \(\w+\), version 1\n", out)
    ok(capsys, "model", "alias", "set", "mlp", "production", "2", *s)
    ok(capsys, "model", "clone", "mlp", "mlp-prod", "--alias", "production", *s)
    with Registry.open(store) as registry:
        parent = registry.get_model("mlp")
        first, prod = registry.get_model("mlp-first"), registry.get_model("mlp-prod")
        digests = {v: {f.path: f.sha256 for f in registry.get_manifest(parent, v).files} for v in (1, 2)}
        assert {f.path: f.sha256 for f in first.artifacts.files} == digests[1] != digests[2]
        assert {f.path: f.sha256 for f in prod.artifacts.files} == digests[2]
        assert first.parent_model_id == parent.id and first.version == 1 and first.configuration == parent.configuration
    assert "1 predicted" in ok(capsys, "predict", "mlp-first", "--dataset", "digits", "--path-prefix", "test/0015.png", *s)
    code, _, err = run(capsys, "model", "clone", "mlp", "other", "--version", "7", *s)
    assert code == 1 and "model 'mlp' has no version 7" in error_line(err)


def test_dataset_items_lists_one_path_per_line(capsys, tmp_path):
    store = str(tmp_path / "store")
    s = ("--store", store)
    trained_digits(capsys, store)
    with Registry.open(store) as registry:
        ds = registry.get_dataset("digits")
        expected = [it.path for it in registry.iter_items(ds, {"subset": "test"})]
    assert ok(capsys, "dataset", "items", "digits", "--subset", "test", *s).splitlines() == expected and len(expected) == 9
    rows = [json.loads(line) for line in ok(capsys, "dataset", "items", "digits", "--subset", "test", "--json", *s).splitlines()]
    assert [r["path"] for r in rows] == expected and all(r["subsets"] == ["test"] and r["id"] for r in rows)
    assert all(p.startswith("train/") for p in ok(capsys, "dataset", "items", "digits", "--path-prefix", "train", *s).splitlines())
    assert len(ok(capsys, "dataset", "items", "digits", *s).splitlines()) == 60
    code, out, err = run(capsys, "dataset", "items", "digits", "--subset", "tset", *s)
    assert code == 1 and out == ""
    assert "dataset digits has no item in subset 'tset' (subsets: train 42, validation 9, test 9)" in error_line(err)


def test_model_evaluations_lists_every_evaluation_with_its_data_and_report(capsys, tmp_path):
    store = str(tmp_path / "store")
    s = ("--store", store)
    trained_digits(capsys, store, versions=2)
    assert "no evaluations yet" in ok(capsys, "model", "evaluations", "mlp", *s)
    ok(capsys, "evaluate", "mlp", "--dataset", "digits", *s)
    ok(capsys, "evaluate", "mlp", "--dataset", "digits", "--subset", "validation", *s)
    records = json.loads(ok(capsys, "model", "evaluations", "mlp", "--json", *s))
    assert [(r["version"], r["dataset"], r["filters"]) for r in records] == [(2, "digits", {"subset": "test"}), (2, "digits", {"subset": "validation"})]
    for r in records:
        assert set(r["metrics"]) == {"accuracy", "macro_f1", "count"} and r["metrics"]["count"] == 9
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["evaluated_at"])
        assert Path(urlparse(r["report_uri"]).path).is_file() and r["report_uri"].startswith("file://")
    table = ok(capsys, "model", "evaluations", "mlp", *s).splitlines()
    assert table[0].split() == ["VERSION", "EVALUATED", "DATASET", "ITEMS", "METRICS", "REPORT"]
    assert "subset=test" in table[1] and "subset=validation" in table[2] and table[2].endswith(records[1]["report_uri"])


def test_human_output_is_tables_and_four_digit_metrics_and_scripts_get_json(capsys, tmp_path):
    store = str(tmp_path / "store")
    s = ("--store", store)
    ok(capsys, "dataset", "import", "digits", "--limit", "60", *s)
    ok(capsys, "model", "create", "--name", "mlp", "--adapter", "examples.digits.adapter:DigitsAdapter", "--dataset", "digits", "--config", "epochs=2", *s)
    trained = ok(capsys, "train", "mlp", *s)
    evaluated = ok(capsys, "evaluate", "mlp", "--dataset", "digits", *s)
    for out in (trained, evaluated):
        assert "{" not in out and not re.search(r"\d\.\d{5,}", out), out  # key value pairs, 4 significant digits
    assert re.search(r"; epoch 1, loss \d\.\d{3,4}, val_accuracy \d\.\d{3,4}$", trained.strip()), trained
    assert re.search(r"^report: file://\S+/report\.html$", evaluated, re.M)

    listing = ok(capsys, "model", "list", *s).splitlines()
    assert listing[0].split() == ["NAME", "ID", "VERSION", "STATUS", "LATEST", "EVALUATION"]
    assert re.match(r"mlp\s+\w+\s+v1\s+trained\s+accuracy \d\.\d{3,4}, macro_f1 \d\.\d{3,4}, count 9 \(v1\)$", listing[1]), listing[1]
    for argv in (("model", "list"), ("dataset", "list"), ("runs", "list"), ("model", "versions", "mlp"), ("model", "evaluations", "mlp"),
                 ("model", "show", "mlp"), ("dataset", "show", "digits"), ("runs", "show", json.loads(ok(capsys, "runs", "list", "--json", *s))[0]["run_id"])):  # fmt: skip
        json.loads(ok(capsys, *argv, "--json", *s))  # every list and show command speaks JSON to scripts


def test_the_import_summary_and_skipped_list_print_once(capsys, tmp_path):
    source = tmp_path / "pets"
    for subset in ("train", "test"):
        for label in ("cat", "dog"):
            (source / subset / label).mkdir(parents=True)
            Image.new("RGB", (8, 8), (200 if label == "cat" else 20, 90, 90)).save(source / subset / label / "a.png")
    (source / "train" / "cat" / "notes.txt").write_text("not an image")
    out = ok(capsys, "dataset", "import", str(source), "--store", str(tmp_path / "store"))
    assert out.count("4 item(s) from ") == 1, out
    assert out.count("notes.txt") == 1, out
