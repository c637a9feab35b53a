"""Issue 21: adapters written for Dataloop's SDK (``import dtlpy as dl``) run unedited through the CLI.

The adapters are in ``dtlpy_adapters.py`` (written the way published ones are); dtlpy is not
installed here, so ``import dtlpy`` gets the framework's dtlpy layer.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adapter_base import AnnotationCollection, Registry
from cli_support import ok, run

S = "--store"


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array.astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _shades(store: str, n: int = 24) -> None:
    """Flat 8x8 images, bright (200) or dark (40), labelled so, spread over train/validation/test."""
    with Registry.open(store) as registry:
        ds = registry.create_dataset("shades", labels=["bright", "dark"])
        for i in range(n):
            subset = ("train", "validation", "test")[i % 3]
            item = registry.add_item(ds, f"{subset}/{i}.png", _png(np.full((8, 8), 200 if i % 2 else 40)), mimetype="image/png", subsets=[subset])
            gt = AnnotationCollection()
            gt.add_classification("bright" if i % 2 else "dark")
            registry.set_ground_truth(item, gt)


def _squares(store: str, n: int = 9) -> dict[str, tuple[int, int, int, int]]:
    """16x16 dark images with one bright square each: its box and its mask as ground truth."""
    boxes = {}
    with Registry.open(store) as registry:
        ds = registry.create_dataset("squares", labels=["square"])
        for i in range(n):
            subset = ("train", "validation", "test")[i % 3]
            left, top, size = 1 + i % 5, 2 + i % 4, 4 + i % 3
            image = np.full((16, 16), 30)
            image[top : top + size, left : left + size] = 220
            item = registry.add_item(ds, f"{subset}/sq{i}.png", _png(image), mimetype="image/png", subsets=[subset])
            gt = AnnotationCollection()
            gt.add_box(left, top, left + size - 1, top + size - 1, "square")
            gt.add_binary_mask(image > 128, "square")
            registry.set_ground_truth(item, gt)
            boxes[item.id] = (left, top, left + size - 1, top + size - 1)
    return boxes


def _prepared(home: Path, subset: str) -> Path:
    (found,) = home.glob(f"model_data/*/*/datasets/*/{subset}")
    return found


def test_dtlpy_torch_classifier_trains_predicts_and_evaluates_unedited(capsys, tmp_path):
    store = str(tmp_path / "store")
    _shades(store)
    ok(capsys, "model", "create", "--name", "clf", "--adapter", "dtlpy_adapters:TorchClassifier", "--dataset", "shades", S, store)
    ok(capsys, "train", "clf", S, store)

    with Registry.open(store) as registry:
        model = registry.get_model("clf")
        # the weights train() left in output_path are the version; save()'s configuration write is kept with it
        assert model.version == 1 and [f.path for f in model.artifacts.files] == ["best.pth"]
        assert model.configuration["weights_filename"] == "best.pth"
        assert model.configuration["id_to_label_map"] == {"0": "bright", "1": "dark"}
        # PlotSample curves: figure loss, legends train and val, one point per epoch
        curves = model.metrics["curves"]
        assert sorted(curves["loss"]) == ["train", "val"] and [x for x, _ in curves["loss"]["val"]] == [0, 1, 2, 3]

    shown = json.loads(ok(capsys, "model", "show", "clf", S, store))
    assert {figure: sorted(lines) for figure, lines in shown["metrics"]["curves"].items()} == {"loss": ["train", "val"]}

    # dtlpy's layout: items/ and json/<path with .json>, dtlpy's JSON
    train = _prepared(Path(os.environ["MODEL_ADAPTER_HOME"]), "train")
    record = json.loads((train / "json" / "train" / "0.json").read_text())
    assert (train / "items" / "train" / "0.png").is_file()
    assert record["filename"] == "/train/0.png" and record["name"] == "0.png"
    assert [(a["type"], a["label"], a["coordinates"]) for a in record["annotations"]] == [("class", "dark", [])]

    out = ok(capsys, "predict", "clf", "--dataset", "shades", "--subset", "test", S, store)
    assert "8 predicted, 0 already done, 0 failed of 8" in out
    with Registry.open(store) as registry:
        model = registry.get_model("clf")
        for item in registry.iter_items(registry.get_dataset("shades"), {"subset": "test"}):
            (ann,) = registry.get_predictions(item, model.id).annotations
            assert ann.type == "classification" and ann.label == registry.get_ground_truth(item).annotations[0].label
            assert ann.model.model_name == "clf" and 0.5 < ann.model.confidence <= 1.0
    evaluated = ok(capsys, "evaluate", "clf", "--dataset", "shades", S, store)
    assert ": accuracy 1.000, " in evaluated
    report = Path(evaluated.split("report: file://")[1].strip()).read_text()
    assert "<h2>Training curves</h2>" in report and 'alt="Training curve loss"' in report  # the PlotSample series, per epoch


def test_dtlpy_box_adapter_reads_json_itself_and_predicts_boxes(capsys, tmp_path):
    store = str(tmp_path / "store")
    boxes = _squares(store)
    ok(capsys, "model", "create", "--name", "boxes", "--adapter", "dtlpy_adapters:BrightBoxes", "--dataset", "squares", "--output-type", "box", S, store)
    ok(capsys, "train", "boxes", S, store)
    with Registry.open(store) as registry:
        registry.download_artifacts(registry.get_model("boxes"), tmp_path / "v1")
    # learnt from the boxes of dtlpy's JSON (read by the adapter) and of DatasetGeneratorTorch (3 training items)
    assert json.loads((tmp_path / "v1" / "threshold.json").read_text()) == {"threshold": 219, "boxes_seen": 3}

    ok(capsys, "predict", "boxes", "--dataset", "squares", "--subset", "test", S, store)
    with Registry.open(store) as registry:
        model = registry.get_model("boxes")
        for item in registry.iter_items(registry.get_dataset("squares"), {"subset": "test"}):
            (ann,) = registry.get_predictions(item, model.id).annotations
            c = ann.coordinates
            assert ann.type == "box" and (c["left"], c["top"], c["right"], c["bottom"]) == boxes[item.id]
    assert "evaluated boxes v1" in ok(capsys, "evaluate", "boxes", "--dataset", "squares", S, store)


def test_dtlpy_segmentation_adapter_gets_label_id_masks_and_predicts_masks(capsys, tmp_path):
    store = str(tmp_path / "store")
    _squares(store)
    ok(capsys, "model", "create", "--name", "masks", "--adapter", "dtlpy_adapters:BrightMasks", "--dataset", "squares", "--output-type", "binary_mask", S, store)
    ok(capsys, "train", "masks", S, store)
    with Registry.open(store) as registry:
        registry.download_artifacts(registry.get_model("masks"), tmp_path / "v1")
    # the masks DatasetGeneratorTorch drew from dtlpy's JSON: label id 0 (label_to_id_map) on the squares' pixels
    assert json.loads((tmp_path / "v1" / "mask.json").read_text())["pixels"] > 0

    ok(capsys, "predict", "masks", "--dataset", "squares", "--subset", "test", S, store)
    with Registry.open(store) as registry:
        model = registry.get_model("masks")
        for item in registry.iter_items(registry.get_dataset("squares"), {"subset": "test"}):
            truth = registry.get_ground_truth(item).annotations[1].mask()
            got = registry.get_predictions(item, model.id).annotations
            assert [a.type for a in got] == ["binary_mask", "binary_mask"]  # dl.Polygon.from_segmentation keeps the mask
            assert all((a.mask() == truth).all() for a in got)


def _run_python(code: str, tmp_path: Path, extra_path: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (extra_path, str(Path(__file__).parent), os.getcwd(), os.environ.get("PYTHONPATH", "")) if p)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)


def test_an_installed_dtlpy_is_never_shadowed(tmp_path):
    fake = tmp_path / "site" / "dtlpy"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("REAL = True\nfrom adapter_base import BaseModelAdapter\n")
    (tmp_path / "site" / "uses_dtlpy.py").write_text("import dtlpy as dl\nclass A(dl.BaseModelAdapter):\n    pass\n")
    done = _run_python(
        """
        import logging, sys
        logging.basicConfig(level=logging.INFO)
        from adapter_base.loading import load_adapter_class
        load_adapter_class("uses_dtlpy:A")
        import dtlpy
        from adapter_base.dtlpy_compat.finder import DtlpyFinder
        print(dtlpy.REAL, any(isinstance(f, DtlpyFinder) for f in sys.meta_path))
        """,
        tmp_path,
        str(tmp_path / "site"),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"] and "dtlpy layer" not in done.stderr


def test_without_dtlpy_the_layer_says_so_once_and_names_what_it_cannot_do(tmp_path):
    done = _run_python(
        """
        import logging
        logging.basicConfig(level=logging.INFO)
        from adapter_base.loading import load_adapter_class
        load_adapter_class("dtlpy_adapters:TorchClassifier")
        load_adapter_class("dtlpy_adapters:BrightBoxes")
        import dtlpy as dl
        for call in (lambda: dl.projects, lambda: __import__("dtlpy.utilities.reports"), lambda: dl.Polyline(geo=[], label="x")):
            try:
                call()
            except Exception as exc:
                print(type(exc).__name__, "|", exc)
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("dtlpy is not installed: `import dtlpy` gets model-adapter's dtlpy layer") == 1
    lines = done.stdout.splitlines()
    assert lines[0].startswith("AttributeError | dtlpy.projects is not provided by model-adapter's dtlpy layer") and "the store is" not in lines[0] and "datasets and models live in the store" in lines[0]
    assert lines[1].startswith("ModuleNotFoundError | dtlpy.utilities.reports is not provided") and "evaluation report" in lines[1]
    assert lines[2].startswith("DtlpyLayerError | dtlpy.Polyline is not provided") and "use dl.Polygon" in lines[2]


def test_model_create_with_artifacts_predicts_without_training_and_model_download_fetches_a_version(capsys, tmp_path):
    store = str(tmp_path / "store")
    _squares(store)
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "threshold.json").write_text(json.dumps({"threshold": 100}))
    code, _, err = run(capsys, "model", "create", "--name", "boxes", "--adapter", "dtlpy_adapters:BrightBoxes", "--artifacts", str(tmp_path / "none"), S, store)
    assert code == 1 and "is not a folder holding files" in err
    with Registry.open(store) as registry:
        assert registry.list_models() == []  # refused before anything was created

    out = ok(capsys, "model", "create", "--name", "boxes", "--adapter", "dtlpy_adapters:BrightBoxes", "--dataset", "squares", "--output-type", "box", "--artifacts", str(weights), S, store)
    assert "version 1: 1 file(s)" in out
    assert "3 predicted, 0 already done, 0 failed of 3" in ok(capsys, "predict", "boxes", "--dataset", "squares", "--subset", "test", S, store)
    ok(capsys, "train", "boxes", S, store)  # version 2

    assert "downloaded boxes v1: 1 file(s)" in ok(capsys, "model", "download", "boxes", str(tmp_path / "v1"), "--version", "1", S, store)
    assert json.loads((tmp_path / "v1" / "threshold.json").read_text()) == {"threshold": 100}
    ok(capsys, "model", "download", "boxes", str(tmp_path / "v2"), S, store)
    assert json.loads((tmp_path / "v2" / "threshold.json").read_text())["threshold"] == 219


def test_embed_stores_one_vector_per_item_resumes_and_exports_jsonl_and_npy(capsys, tmp_path):
    store = str(tmp_path / "store")
    _shades(store, n=12)
    ok(capsys, "model", "create", "--name", "clf", "--adapter", "dtlpy_adapters:TorchClassifier", "--dataset", "shades", S, store)
    ok(capsys, "train", "clf", S, store)
    assert "4 embedded, 0 already done, 0 failed of 4" in ok(capsys, "embed", "clf", "--dataset", "shades", "--subset", "test", S, store)
    assert "0 embedded, 4 already done, 0 failed of 4" in ok(capsys, "embed", "clf", "--dataset", "shades", "--subset", "test", "--resume", S, store)
    assert "12 embedded" in ok(capsys, "embed", "clf", "--dataset", "shades", S, store)

    out = ok(capsys, "embeddings", "export", "clf", "--dataset", "shades", "--format", "jsonl", "-o", str(tmp_path / "e.jsonl"), S, store)
    assert "exported 12 embedding(s) of 12 item(s)" in out and "dimension 4" in out
    rows = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    with Registry.open(store) as registry:
        paths = {i.id: i.path for i in registry.iter_items(registry.get_dataset("shades"))}
    for row in rows:  # the adapter's embed(): the first 4 centred pixels of the item
        bright = int(row["path"].split("/")[1].split(".")[0]) % 2 == 1
        assert paths[row["item_id"]] == row["path"] and row["vector"] == pytest.approx([200 / 255 - 0.5 if bright else 40 / 255 - 0.5] * 4)

    ok(capsys, "embeddings", "export", "clf", "--dataset", "shades", "--subset", "test", "--format", "npy", "-o", str(tmp_path / "e.npy"), S, store)
    matrix = np.load(tmp_path / "e.npy")
    index = [json.loads(line) for line in (tmp_path / "e.items.jsonl").read_text().splitlines()]
    assert matrix.shape == (4, 4) and matrix.dtype == np.float32 and len(index) == 4
    by_id = {r["item_id"]: r["vector"] for r in rows}
    assert all(np.allclose(matrix[n], by_id[entry["item_id"]]) for n, entry in enumerate(index))


def test_dtlpy_embed_items_returns_items_and_vectors_as_dtlpy(tmp_path):
    store = str(tmp_path / "store")
    _shades(store, n=6)
    from adapter_base.loading import make_adapter

    with Registry.open(store) as registry:
        model = registry.create_model("clf", adapter="dtlpy_adapters:TorchClassifier", labels=["bright", "dark"])
        adapter = make_adapter(registry, model=model)
        adapter.load_from_model(model_entity=model)
        items = list(registry.iter_items(registry.get_dataset("shades")))
        done, vectors = adapter.embed_items(items, upload_features=False)
        assert [i.id for i in done] == [i.id for i in items] and all(len(v) == 4 for v in vectors)
        assert all(registry.get_embedding(i, model.id) is None for i in items)  # upload_features=False stores nothing
        adapter.embed_items(items)
        assert all(registry.get_embedding(i, model.id).vector == v for i, v in zip(items, vectors))


def test_embed_with_an_adapter_without_embed_fails_each_item_with_a_clear_error(capsys, tmp_path):
    store = str(tmp_path / "store")
    _squares(store, n=3)
    ok(capsys, "model", "create", "--name", "boxes", "--adapter", "dtlpy_adapters:BrightBoxes", "--dataset", "squares", "--output-type", "box", S, store)
    ok(capsys, "train", "boxes", S, store)
    code, out, _ = run(capsys, "embed", "boxes", "--dataset", "squares", S, store)
    assert code == 1 and "0 embedded, 0 already done, 3 failed of 3" in out
    # the 3 identical failures are one summary line (every item is in the stored report)
    assert "  FAILED 3 items at embed: NotImplementedError: BrightBoxes must implement embed(batch, **kwargs) to embed" in out


def test_data_generator_over_a_prepared_subset_ignores_filters_and_names_a_missing_folder(tmp_path):
    done = _run_python(
        """
        import json, os
        import numpy as np
        from PIL import Image
        from adapter_base.loading import load_adapter_class
        load_adapter_class("dtlpy_adapters:BrightBoxes")
        import dtlpy as dl
        from dtlpy.utilities.dataset_generators.dataset_generator_torch import DatasetGeneratorTorch, collate_torch
        os.makedirs("train/items/a", exist_ok=True); os.makedirs("train/json/a", exist_ok=True)
        Image.fromarray(np.zeros((6, 8), np.uint8)).save("train/items/a/x.png")
        square = {"type": "segment", "label": "sq", "coordinates": [[{"x": 1, "y": 1}, {"x": 4, "y": 1}, {"x": 4, "y": 3}, {"x": 1, "y": 3}]], "metadata": {"user": {}}}
        predicted = dict(square, label="other", metadata={"user": {"model": {"confidence": 0.5}}})
        json.dump({"id": "x1", "filename": "/a/x.png", "annotations": [square, predicted]}, open("train/json/a/x.json", "w"))
        g = DatasetGeneratorTorch(data_path="train", filters=dl.Filters(custom_filter={"x": 1}), dataset_entity=None,
                                  annotation_type=dl.AnnotationType.POLYGON, label_to_id_map={"sq": 3, "other": 4})
        (s,) = list(g)
        print(s["item_id"], s["labels"], s["class"].tolist(), s["box"].tolist(), len(s["segment"]))
        m = DatasetGeneratorTorch(data_path="train", dataset_entity=None, annotation_type=dl.AnnotationType.POLYGON, to_mask=True, label_to_id_map={"sq": 3})
        mask = m[0]["annotations"]
        print(mask.shape, int((mask == 3).sum()), sorted(set(mask.ravel().tolist())))
        sample = {k: m[0][k] for k in ("annotations", "labels")}  # polygons (object arrays) do not collate, as in dtlpy
        batch = collate_torch([sample, sample])
        print(tuple(batch["annotations"].shape), batch["labels"])
        try:
            DatasetGeneratorTorch(data_path="nowhere", dataset_entity=None, annotation_type=dl.AnnotationType.BOX, label_to_id_map={})
        except NotImplementedError as exc:
            print(exc)
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # the prediction (metadata.user.model) is not ground truth; the polygon's bounds and points come through
    assert lines[0] == "x1 ['sq'] [3] [[1.0, 1.0, 4.0, 3.0]] 1"
    # the label-id mask is drawn from the JSON (dtlpy downloads it as instance/): 4 x 3 pixels of id 3
    assert lines[1] == "(6, 8) 12 [0, 3]"
    assert lines[2] == "(2, 6, 8) [('sq', 'sq')]"  # masks stacked; label lists transposed (position by position)
    assert "DatasetGenerator(data_path='nowhere') downloading a dataset is not provided" in lines[3] and "the subset folder prepare_data wrote" in lines[3]


def test_dl_model_update_persists_now_and_artifacts_upload_joins_the_next_version(tmp_path):
    store = str(tmp_path / "store")
    _shades(store, n=6)
    from adapter_base.loading import make_adapter

    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "labels.txt").write_text("bright\ndark\n")
    with Registry.open(store) as registry:
        model = registry.create_model(
            "clf", adapter="dtlpy_adapters:TorchClassifier", labels=["bright", "dark"], dataset_id=registry.get_dataset("shades").id, subsets={"train": {"subset": "train"}, "validation": {"subset": "validation"}}
        )
        adapter = make_adapter(registry, model=model)
        adapter.load_from_model(model_entity=model)
        entity = adapter.model_entity
        assert entity.dataset.name == "shades" and entity.label_to_id_map == {"bright": 0, "dark": 1}
        # dtlpy's prepare_data: (root_path, data_path, output_path), the subsets under data_path
        root_path, data_path, output_path = adapter.prepare_data(entity.dataset, root_path=str(tmp_path / "root"))
        assert (root_path, output_path) == (str(tmp_path / "root"), str(tmp_path / "root" / "output"))
        assert sorted(p.name for p in Path(data_path).iterdir()) == ["train", "validation"] and Path(data_path, "train", "json").is_dir()
        # as dtlpy adapters remap labels in load(): set the maps, then update()
        entity.id_to_label_map = {0: "background", 1: "bright", 2: "dark"}
        entity.labels = ["background", "bright", "dark"]
        entity.update()
        stored = registry.get_model("clf")
        assert stored.labels == ["background", "bright", "dark"] and stored.configuration["id_to_label_map"] == {"0": "background", "1": "bright", "2": "dark"}
        assert stored.version == 0  # update() changes the record, not the versions

        assert entity.artifacts.upload(str(extra / "*")) == ["labels.txt"]
        assert registry.get_model("clf").version == 0  # staged, not uploaded
        saved = adapter.save_to_model()
        assert sorted(f.path for f in saved.artifacts.files) == ["best.pth", "labels.txt"]
        assert adapter.model_entity.artifacts.list() == ["best.pth", "labels.txt"]
        got = adapter.model_entity.artifacts.download(str(tmp_path / "got"))
        assert (Path(got) / "labels.txt").read_text() == "bright\ndark\n"
        try:
            adapter.model_entity.bucket
        except AttributeError as exc:
            assert "Model.bucket is not provided" in str(exc) and "leave them in output_path" in str(exc)
        else:
            raise AssertionError("model.bucket must name what to use instead")


def test_the_predict_shard_step_embeds_a_shard_when_asked(capsys, tmp_path):
    from adapter_base.steps.model_ref import ModelRef
    from adapter_base.steps.predict_shard import predict_shard
    from adapter_base.steps.split_dataset import split_dataset

    store = str(tmp_path / "store")
    _shades(store, n=6)
    ok(capsys, "model", "create", "--name", "clf", "--adapter", "dtlpy_adapters:TorchClassifier", "--dataset", "shades", S, store)
    ok(capsys, "train", "clf", S, store)
    index = split_dataset("shades", 2, "run1", store_uri=store)
    with Registry.open(store) as registry:
        ref = ModelRef.of(registry.get_model("clf"), store)
    outs = [predict_shard("dtlpy_adapters:TorchClassifier", ref, index, shard, store_uri=store, task="embed") for shard in range(2)]
    assert sum(o["succeeded"] for o in outs) == 6 and all(o["failed"] == 0 for o in outs)
    with Registry.open(store) as registry:
        model = registry.get_model("clf")
        items = list(registry.iter_items(registry.get_dataset("shades")))
        assert all(len(registry.get_embedding(i, model.id).vector) == 4 and registry.get_predictions(i, model.id) is None for i in items)
