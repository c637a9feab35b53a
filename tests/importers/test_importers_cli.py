"""``model-adapter dataset import`` as a user meets it (issue 12, "Data in"): each case is a folder,
COCO, YOLO or CSV source seen going wrong before, imported through ``main([...])`` into a real local store."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from adapter_base import Registry
from importers_support import coco_folder, run, write_png


def boxes(registry: Registry, item) -> list[tuple[str, tuple[float, float, float, float]]]:
    gt = registry.get_ground_truth(item)
    return sorted((a.label, tuple(a.coordinates[k] for k in ("left", "top", "right", "bottom"))) for a in gt if a.type == "box")


def by_path(registry: Registry, name: str) -> dict:
    return {it.path: it for it in registry.iter_items(registry.get_dataset(name))}


# --------------------------------------------------------------------------- folders


def test_val_folder_is_the_validation_subset_and_notes_are_skipped_with_a_count(capsys, tmp_path):
    """Seen: ``val/`` became a label and ``notes.txt`` an image of its class."""
    root = tmp_path / "pets"
    for rel in ("train/cat/a.png", "train/dog/b.png", "val/cat/c.png", "valid/dog/d.png", "Validation/dog/e.png", "test/cat/f.png", "test/dog/g.png"):
        write_png(root / rel)
    (root / "train" / "cat" / "notes.txt").write_text("collected in 2019")
    (root / "README.md").write_text("# pets")
    store = str(tmp_path / "store")
    code, out, err = run(capsys, "dataset", "import", str(root), "--store", store)
    assert code == 0, err
    assert "train 2, validation 3, test 2" in out
    assert "warning: 2 file(s) skipped: not an image" in out
    # the summary is printed before anything is written (it precedes the result line) and again after
    assert out.index("warning: 2 file(s) skipped") < out.index("imported dataset pets")
    assert out.count("  label ") == 2 and re.search(r"\n  cat +1 +1 +1\n  dog +1 +2 +1\n", out), out
    assert "train/cat/notes.txt: not an image (text/plain)" in out
    with Registry.open(store) as registry:
        ds = registry.get_dataset("pets")
        assert ds.labels == ["cat", "dog"]
        items = by_path(registry, "pets")
        assert sorted(items) == ["Validation/dog/e.png", "test/cat/f.png", "test/dog/g.png", "train/cat/a.png", "train/dog/b.png", "val/cat/c.png", "valid/dog/d.png"]
        assert items["val/cat/c.png"].subsets == ["validation"] and items["Validation/dog/e.png"].subsets == ["validation"]
        assert [a.label for a in registry.get_ground_truth(items["val/cat/c.png"])] == ["cat"]


def unsplit_folder(root: Path, per_label: dict[str, int]) -> None:
    for label, n in per_label.items():
        for i in range(n):
            write_png(root / label / f"{i:03d}.png", value=i)


def subsets_by_path(store: str, name: str) -> dict[str, list[str]]:
    with Registry.open(store) as registry:
        return {path: it.subsets for path, it in by_path(registry, name).items()}


def test_unsplit_folder_warns_and_split_is_stratified_and_deterministic(capsys, tmp_path):
    """Seen: a folder without subset folders imported as 0/0/0 with no way to split."""
    root = tmp_path / "flowers"
    unsplit_folder(root, {"rose": 20, "tulip": 10})
    code, out, err = run(capsys, "dataset", "import", str(root), "--dry-run", "--store", str(tmp_path / "dry"))
    assert code == 0, err
    assert "warning: no subsets: none of the 30 items" in out and "--split 0.8,0.1,0.1" in out
    assert "dry run: nothing was written" in out and not (tmp_path / "dry").exists()

    store = str(tmp_path / "store")
    code, out, err = run(capsys, "dataset", "import", str(root), "--split", "0.8,0.1,0.1", "--seed", "7", "--store", store)
    assert code == 0, err
    assert "train 24, validation 3, test 3" in out
    assert re.search(r"\n  rose +16 +2 +2\n  tulip +8 +1 +1\n", out), out  # per label, not only overall
    first = subsets_by_path(store, "flowers")

    other = str(tmp_path / "again")
    assert run(capsys, "dataset", "import", str(root), "--split", "0.8,0.1,0.1", "--seed", "7", "--store", other)[0] == 0
    assert subsets_by_path(other, "flowers") == first  # same seed, same split
    third = str(tmp_path / "seed8")
    assert run(capsys, "dataset", "import", str(root), "--split", "0.8,0.1,0.1", "--seed", "8", "--store", third)[0] == 0
    assert subsets_by_path(third, "flowers") != first

    # re-importing with --split keeps each item's subset and adds only the new file
    write_png(root / "rose" / "new.png", value=250)
    code, out, err = run(capsys, "dataset", "import", str(root), "--split", "0.8,0.1,0.1", "--seed", "7", "--store", store)
    assert code == 0, err
    assert "added 1 item(s), 30 already there" in out
    after = subsets_by_path(store, "flowers")
    assert {p: s for p, s in after.items() if p != "rose/new.png"} == first and len(after["rose/new.png"]) == 1


@pytest.mark.parametrize("split", ["0.8,0.1", "0.5,0.5,0.5", "a,b,c", "1.2,-0.1,-0.1"])
def test_bad_split_is_one_line_naming_the_option(capsys, tmp_path, split):
    unsplit_folder(tmp_path / "f", {"x": 2})
    code, out, err = run(capsys, "dataset", "import", str(tmp_path / "f"), "--split", split, "--store", str(tmp_path / "store"))
    if split == "0.8,0.1":  # two fractions: train and validation, no test; they must add up to 1
        assert code == 1 and "--split" in err and "add up to 1" in err
    else:
        assert code == 1 and err.startswith("error: ValidationError: import.--split") and len(err.splitlines()) == 1
    assert not (tmp_path / "store").exists()


# --------------------------------------------------------------------------- COCO


def test_coco_folder_imports_boxes_not_the_json_file(capsys, tmp_path):
    """Seen: ``instances.json`` imported as an item and every image labelled ``images``."""
    root = tmp_path / "street"
    coco_folder(root, crowd=2)
    store = str(tmp_path / "store")
    code, out, err = run(capsys, "dataset", "import", str(root), "--store", store)
    assert code == 0, err
    assert "(coco)" in out and "warning: 2 iscrowd annotations ignored" in out
    with Registry.open(store) as registry:
        ds = registry.get_dataset("street")
        assert ds.labels == ["cat", "dog"]
        items = by_path(registry, "street")
        assert sorted(items) == ["a.png", "b.png", "c.png"]  # no instances.json, no "images/" prefix as a label
        assert boxes(registry, items["a.png"]) == [("cat", (1.0, 2.0, 11.0, 7.0)), ("cat", (20.5, 3.0, 25.0, 9.0))]
        assert boxes(registry, items["b.png"]) == [("dog", (0.0, 0.0, 40.0, 30.0))]  # the crowd regions are not there
        assert boxes(registry, items["c.png"]) == []
        assert {k: items["c.png"].metadata[k] for k in ("width", "height")} == {"width": 20, "height": 10}
        assert all(a.type == "box" for it in items.values() for a in registry.get_ground_truth(it))


def test_coco_with_images_and_annotations_options(capsys, tmp_path):
    root = tmp_path / "street"
    coco_folder(root)
    (root / "images" / "stray.png").write_bytes((root / "images" / "a.png").read_bytes())
    store = str(tmp_path / "store")
    code, out, err = run(
        capsys, "dataset", "import", "--format", "coco", "--images", str(root / "images"),
        "--annotations", str(root / "annotations" / "instances.json"), "--name", "street", "--store", store,
    )
    assert code == 0, err
    assert "stray.png: not in instances.json" in out and "1 iscrowd annotations ignored" in out
    with Registry.open(store) as registry:
        assert sorted(by_path(registry, "street")) == ["a.png", "b.png", "c.png"]


def test_coco_errors_name_the_annotation(capsys, tmp_path):
    root = tmp_path / "bad"
    coco = coco_folder(root)
    coco["annotations"][1]["bbox"] = [1, 2, -3, 4]
    (root / "annotations" / "instances.json").write_text(json.dumps(coco))
    code, _, err = run(capsys, "dataset", "import", str(root), "--store", str(tmp_path / "store"))
    assert code == 1 and "instances.json annotations[1].bbox" in err and "[1, 2, -3, 4]" in err


# --------------------------------------------------------------------------- YOLO


@pytest.mark.parametrize("names_file", ["data.yaml", "classes.txt"])
def test_yolo_folder_imports_boxes_in_pixels(capsys, tmp_path, names_file):
    root = tmp_path / "yolo"
    write_png(root / "images" / "train" / "a.png", size=(100, 50))
    write_png(root / "images" / "val" / "b.png", size=(100, 50))
    write_png(root / "images" / "train" / "empty.png", size=(100, 50))
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "val").mkdir(parents=True)
    (root / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.2 0.4\n1 0.1 0.2 0.2 0.4\n")
    (root / "labels" / "val" / "b.txt").write_text("1 0.25 0.5 0.5 1.0\n")
    if names_file == "data.yaml":
        (root / "data.yaml").write_text(yaml.safe_dump({"names": {0: "car", 1: "person"}, "train": "images/train"}))
    else:
        (root / "classes.txt").write_text("car\nperson\n")
    store = str(tmp_path / "store")
    code, out, err = run(capsys, "dataset", "import", str(root), "--store", store)
    assert code == 0, err
    assert "(yolo)" in out and "train 2, validation 1, test 0" in out
    with Registry.open(store) as registry:
        assert registry.get_dataset("yolo").labels == ["car", "person"]
        items = by_path(registry, "yolo")
        assert sorted(items) == ["images/train/a.png", "images/train/empty.png", "images/val/b.png"]
        assert boxes(registry, items["images/train/a.png"]) == [("car", (40.0, 15.0, 60.0, 35.0)), ("person", (0.0, 0.0, 20.0, 20.0))]
        assert boxes(registry, items["images/val/b.png"]) == [("person", (0.0, 0.0, 50.0, 50.0))]
        assert boxes(registry, items["images/train/empty.png"]) == []
        assert items["images/val/b.png"].metadata["width"] == 100 and items["images/val/b.png"].subsets == ["validation"]


def test_yolo_bad_line_names_the_file_and_line(capsys, tmp_path):
    root = tmp_path / "yolo"
    write_png(root / "images" / "a.png")
    (root / "labels").mkdir(parents=True)
    (root / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.4\n3 0.5 0.5 0.2 0.4\n")
    (root / "classes.txt").write_text("car\n")
    code, _, err = run(capsys, "dataset", "import", str(root), "--store", str(tmp_path / "store"))
    assert code == 1 and "labels/a.txt:2" in err and "class 3 is not among the 1 class names" in err


# --------------------------------------------------------------------------- CSV


def test_csv_of_path_label_subset(capsys, tmp_path):
    root = tmp_path / "shots"
    for name in ("a.png", "b.png", "c.png", "d.png"):
        write_png(root / "img" / name)
    (root / "img" / "e.txt").write_text("not an image")
    (root / "labels.csv").write_text(
        "path,label,subset\nimg/a.png,cat,train\nimg/b.png,dog,val\nimg/c.png,cat,test\nimg/d.png,,\nimg/e.txt,cat,train\nimg/gone.png,dog,train\n"
    )
    store = str(tmp_path / "store")
    code, out, err = run(capsys, "dataset", "import", str(root / "labels.csv"), "--name", "shots", "--store", store)
    assert code == 0, err
    assert "(csv)" in out and "train 1, validation 1, test 1" in out
    assert "img/gone.png: listed on line 7 but not found" in out and "img/e.txt: not an image (text/plain), line 6" in out
    with Registry.open(store) as registry:
        items = by_path(registry, "shots")
        assert sorted(items) == ["img/a.png", "img/b.png", "img/c.png", "img/d.png"]
        assert items["img/b.png"].subsets == ["validation"] and items["img/d.png"].subsets == []
        assert [a.label for a in registry.get_ground_truth(items["img/b.png"])] == ["dog"]
        assert len(registry.get_ground_truth(items["img/d.png"])) == 0


def test_csv_without_header_and_paths_outside_are_refused(capsys, tmp_path):
    write_png(tmp_path / "data" / "a.png")
    (tmp_path / "data" / "list.csv").write_text("a.png,cat\n")
    store = str(tmp_path / "store")
    code, out, err = run(capsys, "dataset", "import", str(tmp_path / "data" / "list.csv"), "--store", store)
    assert code == 0, err
    assert "warning: no subsets: none of the 1 items" in out
    write_png(tmp_path / "secret.png")
    (tmp_path / "data" / "evil.csv").write_text("../secret.png,cat\n")
    code, _, err = run(capsys, "dataset", "import", str(tmp_path / "data" / "evil.csv"), "--store", store)
    assert code == 1 and "evil.csv:1" in err and "not inside" in err


# --------------------------------------------------------------------------- re-import


def test_reimport_adds_only_what_is_new_and_says_how_to_proceed_on_a_conflict(capsys, tmp_path):
    root = tmp_path / "pets"
    for rel in ("train/cat/a.png", "train/dog/b.png", "test/cat/c.png"):
        write_png(root / rel, value=10)
    store = str(tmp_path / "store")
    assert run(capsys, "dataset", "import", str(root), "--store", store)[0] == 0
    code, out, err = run(capsys, "dataset", "import", str(root), "--store", store)
    assert code == 0, err
    assert "added 0 item(s), 3 already there" in out

    write_png(root / "test" / "dog" / "d.png", value=20)
    code, out, err = run(capsys, "dataset", "import", str(root), "--store", store)
    assert code == 0, err
    assert "added 1 item(s), 3 already there" in out and "train 2, validation 0, test 2" in out

    write_png(root / "train" / "cat" / "a.png", value=99)  # same path, different content
    write_png(root / "train" / "cat" / "z.png", value=30)
    code, out, err = run(capsys, "dataset", "import", str(root), "--store", store)
    assert code == 1
    assert "train/cat/a.png: file content differ" in err and "nothing was written" in err and "--on-conflict skip" in err
    with Registry.open(store) as registry:
        assert "train/cat/z.png" not in by_path(registry, "pets")

    code, out, err = run(capsys, "dataset", "import", str(root), "--on-conflict", "skip", "--store", store)
    assert code == 0, err
    assert "added 1 item(s), 3 already there, 1 differing kept as they were" in out
    with Registry.open(store) as registry:
        items = by_path(registry, "pets")
        assert "train/cat/z.png" in items
        assert registry.read_item(items["train/cat/a.png"]) != (root / "train" / "cat" / "a.png").read_bytes()

    other = tmp_path / "other"
    write_png(other / "train" / "cat" / "q.png")
    code, _, err = run(capsys, "dataset", "import", str(other), "--name", "pets", "--store", store)
    assert code == 1 and "already exists" in err and "choose another --name" in err


def test_relabelled_csv_row_is_a_conflict(capsys, tmp_path):
    write_png(tmp_path / "a.png")
    table = tmp_path / "list.csv"
    table.write_text("path,label\na.png,cat\n")
    store = str(tmp_path / "store")
    assert run(capsys, "dataset", "import", str(table), "--store", store)[0] == 0
    table.write_text("path,label\na.png,dog\n")
    code, _, err = run(capsys, "dataset", "import", str(table), "--store", store)
    assert code == 1 and "a.png: ground truth differ" in err
