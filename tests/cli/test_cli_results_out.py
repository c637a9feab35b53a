"""Issue 12, results out: ``predictions export|show`` and ``runs list|show`` from the command line."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import tracemalloc
from pathlib import Path

import pytest
from pycocotools.coco import COCO  # the dev extra: a missing package fails here, it is never skipped
from pycocotools.cocoeval import COCOeval

from adapter_base import Registry
from adapter_base.entities import Annotation, Item, ModelInfo, PredictionSet
from adapter_base.errors import ValidationError
from adapter_base.export import write_export
from cli_support import error_line, ok, run, trained_digits
from examples.shapes.dataset import write_shapes


def test_predictions_export_jsonl_and_csv_hold_every_stored_prediction(capsys, tmp_path):
    store = str(tmp_path / "store")
    s = ("--store", store)
    trained_digits(capsys, store)
    ok(capsys, "predict", "mlp", "--dataset", "digits", "--subset", "test", *s)

    out = ok(capsys, "predictions", "export", "mlp", "--dataset", "digits", "--format", "jsonl", "-o", str(tmp_path / "p.jsonl"), *s)
    assert "exported 9 prediction(s) on 9 of 60 item(s)" in out and "51 item(s) have no predictions from this model" in out
    lines = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    with Registry.open(store) as registry:
        model = registry.get_model("mlp")
        ds = registry.get_dataset("digits")
        expected = {}
        for item in registry.iter_items(ds, {"subset": "test"}):
            (ann,) = registry.get_predictions(item, model.id).annotations
            expected[item.id] = (item.path, ann.label, ann.confidence)
    assert {row["item_id"]: (row["path"], row["annotations"][0]["label"], row["annotations"][0]["confidence"]) for row in lines} == expected
    assert {row["model_version"] for row in lines} == {1} and all(row["subsets"] == ["test"] for row in lines)

    # --subset limits what is listed; CSV has one row per annotation
    out = ok(capsys, "predictions", "export", "mlp", "--dataset", "digits", "--subset", "test", "--format", "csv", "-o", str(tmp_path / "p.csv"), *s)
    assert "on 9 of 9 item(s)" in out and "no predictions" not in out
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert {r["item_id"]: (r["path"], r["label"], float(r["confidence"])) for r in rows} == expected
    assert {r["type"] for r in rows} == {"classification"} and {r["left"] for r in rows} == {""}


def test_export_writes_row_by_row_in_constant_memory(tmp_path):
    """Memory does not grow with the number of items: 10x the rows, about the same peak."""

    def rows(n):
        for i in range(n):
            item = Item(dataset_id="d", path=f"img/{i:07d}.png", mimetype="image/png", id=f"i{i}", metadata={"coco_image_id": i + 1})
            ann = Annotation.box(1, 2, 11, 22, "cat", model=ModelInfo(confidence=0.5, model_id="m"))
            yield item, PredictionSet(item_id=item.id, model_id="m", model_name="m", model_version=1, annotations=[ann])

    peaks = {}
    for fmt in ("jsonl", "csv", "coco"):
        for n in (500, 5_000):
            tracemalloc.start()
            result = write_export(rows(n), tmp_path / f"{fmt}-{n}.json", fmt, labels=["cat"])
            peaks[fmt, n] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            assert result.exported == result.annotations == n
        assert peaks[fmt, 5_000] < 1.5 * peaks[fmt, 500] + 64_000, peaks
    with contextlib.redirect_stdout(io.StringIO()):
        results = COCO(str(tmp_path / "coco-5000.images.json")).loadRes(str(tmp_path / "coco-5000.json"))
    assert len(results.getAnnIds()) == 5_000


@pytest.mark.slow
def test_predictions_export_coco_loads_in_pycocotools_and_scores_like_evaluate(capsys, tmp_path):
    source = tmp_path / "shapes"
    annotations = write_shapes(source, images=60, seed=2)
    # category ids of a real COCO file need not be 1..N: the export takes them from --categories
    data = json.loads(annotations.read_text())
    remap = {c["id"]: 10 * c["id"] + 7 for c in data["categories"]}
    for c in data["categories"]:
        c["id"] = remap[c["id"]]
    for a in data["annotations"]:
        a["category_id"] = remap[a["category_id"]]
    annotations.write_text(json.dumps(data))
    s = ("--store", str(tmp_path / "store"))
    ok(capsys, "dataset", "import", str(source), *s)
    ok(capsys, "model", "create", "--name", "blobs", "--adapter", "examples.shapes.adapter:ShapesAdapter", "--dataset", "shapes", "--output-type", "box", *s)
    ok(capsys, "train", "blobs", *s)
    out = ok(capsys, "evaluate", "blobs", "--dataset", "shapes", "--subset", "test", *s)
    reported = float(re.search(r": map ([0-9.]+), ", out).group(1))
    assert 0.3 < reported < 1.0, out

    results = tmp_path / "dets.json"
    out = ok(capsys, "predictions", "export", "blobs", "--dataset", "shapes", "--subset", "test", "--format", "coco",
             "-o", str(results), "--categories", str(annotations), *s)  # fmt: skip
    assert f"images and categories in {tmp_path / 'dets.images.json'}" in out
    detections = json.loads(results.read_text())
    assert detections and set(detections[0]) == {"image_id", "category_id", "bbox", "score"}
    assert {d["category_id"] for d in detections} <= set(remap.values())
    images = json.loads((tmp_path / "dets.images.json").read_text())
    assert images["categories"] == [{"id": c["id"], "name": c["name"]} for c in data["categories"]]
    gt_ids = {im["file_name"]: im["id"] for im in data["images"]}
    assert all(gt_ids[im["file_name"]] == im["id"] for im in images["images"]), "image ids are the COCO file's"

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(annotations))
        ev = COCOeval(gt, gt.loadRes(str(results)), "bbox")
        ev.params.imgIds = [im["id"] for im in images["images"]]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        # the images file alone is a COCO dataset the results load against, too
        assert len(COCO(str(tmp_path / "dets.images.json")).loadRes(str(results)).getAnnIds()) == len(detections)
    assert float(ev.stats[0]) == pytest.approx(reported, abs=1e-4)

    # without --categories the ids are 1..N, which this file does not use: a different score, not an error
    ok(capsys, "predictions", "export", "blobs", "--dataset", "shapes", "--subset", "test", "--format", "coco", "-o", str(tmp_path / "plain.json"), *s)
    assert {d["category_id"] for d in json.loads((tmp_path / "plain.json").read_text())} <= {1, 2, 3, 4}


def test_predictions_export_coco_refuses_what_coco_cannot_hold(capsys, tmp_path):
    store = str(tmp_path / "store")
    trained_digits(capsys, store)
    ok(capsys, "predict", "mlp", "--dataset", "digits", "--subset", "test", "--store", store)
    out_file = tmp_path / "c.json"
    code, _, err = run(capsys, "predictions", "export", "mlp", "--dataset", "digits", "--format", "coco", "-o", str(out_file), "--store", store)
    assert code == 1 and "model 'mlp' outputs classification: use --format jsonl or csv" in error_line(err)
    assert not out_file.exists()

    # a predicted label missing from --categories names the label, and no half-written file is left
    item = Item(dataset_id="d", path="a.png", mimetype="image/png", id="a")
    ann = Annotation.box(0, 0, 5, 5, "dog", model=ModelInfo(confidence=0.9, model_id="m"))
    rows = [(item, PredictionSet(item_id="a", model_id="m", model_name="m", model_version=1, annotations=[ann]))]
    with pytest.raises(ValidationError, match=r"predicted label\(s\) dog are not among the categories \(cat\)"):
        write_export(rows, out_file, "coco", categories=[{"id": 3, "name": "cat"}])
    assert not out_file.exists() and not list(tmp_path.glob(".c.*"))


def test_predictions_show_finds_an_item_by_id_or_path(capsys, tmp_path):
    store = str(tmp_path / "store")
    s = ("--store", store)
    trained_digits(capsys, store)
    ok(capsys, "predict", "mlp", "--dataset", "digits", "--subset", "test", *s)
    with Registry.open(store) as registry:
        item = next(registry.iter_items(registry.get_dataset("digits"), {"subset": "test"}))
        truth = registry.get_ground_truth(item).annotations[0].label
    by_path = json.loads(ok(capsys, "predictions", "show", item.path, "--dataset", "digits", *s))
    by_id = json.loads(ok(capsys, "predictions", "show", item.id, "--dataset", "digits", "--model", "mlp", *s))
    assert by_path == by_id
    assert by_path["item"]["id"] == item.id and by_path["ground_truth"][0]["label"] == truth
    (pred,) = by_path["predictions"]
    assert pred["model_name"] == "mlp" and pred["model_version"] == 1 and pred["annotations"][0]["model"]["confidence"] > 0
    code, _, err = run(capsys, "predictions", "show", "test/nope.png", "--dataset", "digits", *s)
    assert code == 1 and "has no item with id or path 'test/nope.png'" in error_line(err)


def test_runs_list_and_show_read_the_stored_run_reports(capsys, tmp_path):
    store = str(tmp_path / "store")
    s = ("--store", store)
    trained_digits(capsys, store, corrupt=True)
    code, out, _ = run(capsys, "predict", "mlp", "--dataset", "digits", "--subset", "test", *s)
    assert code == 1
    failed_run = re.search(r"prediction run (\w+):", out).group(1)
    out = ok(capsys, "predict", "mlp", "--dataset", "digits", "--subset", "train", *s)
    ok_run = re.search(r"prediction run (\w+):", out).group(1)

    listing = ok(capsys, "runs", "list", *s).splitlines()
    assert listing[0].split() == ["RUN", "KIND", "MODEL", "DATASET", "SUBSET", "PREDICTED", "ALREADY", "DONE", "FAILED", "TOTAL", "STATUS", "STARTED"]
    assert [line.split()[0] for line in listing[1:]] == [ok_run, failed_run], "newest first"
    assert listing[2].split()[1:-1] == ["predict", "mlp@v1", "digits", "test", "9", "0", "1", "10", "FAILED"]
    assert listing[1].split()[1:-1] == ["predict", "mlp@v1", "digits", "train", "42", "0", "0", "42", "ok"]
    assert ok(capsys, "runs", "list", "--model", "mlp", "--limit", "1", *s).splitlines()[1].startswith(ok_run)
    ok(capsys, "evaluate", "mlp", "--dataset", "digits", "--subset", "validation", *s)
    (latest, *_) = json.loads(ok(capsys, "runs", "list", "--json", *s))
    assert {k: latest[k] for k in ("kind", "model", "dataset", "subset", "predicted", "failed", "total", "status")} == {
        "kind": "evaluate", "model": "mlp@v1", "dataset": "digits", "subset": "validation", "predicted": 9, "failed": 0, "total": 9, "status": "ok",
    }  # fmt: skip

    shown = ok(capsys, "runs", "show", failed_run, *s)
    assert "9 predicted, 0 already done, 1 failed of 10" in shown
    assert len([line for line in shown.splitlines() if "FAILED" in line and "test/corrupt.png" in line]) == 1
    as_json = json.loads(ok(capsys, "runs", "show", failed_run, "--json", *s))
    assert as_json["run_id"] == failed_run and as_json["failed"] == 1
    code, _, err = run(capsys, "runs", "show", "nosuchrun", *s)
    assert code == 1 and "no prediction run 'nosuchrun'" in error_line(err)


def test_a_failed_item_is_reported_on_one_line(capsys, tmp_path):
    """It used to be logged on stderr as it happened and listed again in the summary on stdout."""
    store = str(tmp_path / "store")
    trained_digits(capsys, store, corrupt=True)
    for command in ("predict", "evaluate"):
        code, out, err = run(capsys, command, "mlp", "--dataset", "digits", "--subset", "test", "--store", store)
        assert code == 1
        assert len([line for line in (out + err).splitlines() if "test/corrupt.png" in line]) == 1, (out, err)
        assert re.search(r"FAILED \w+ \(test/corrupt\.png\) at prepare: ", out)
