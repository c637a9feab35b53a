"""``model-adapter dataset import`` as a user meets it (issue 12, "Data in"): each case is a folder,
COCO, YOLO or CSV source seen going wrong before, imported through ``main([...])`` into a real local store."""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path

import pytest
import yaml

from adapter_base import Dataset, NotFoundError, Registry, ValidationError
from adapter_base.importers import import_directory
from adapter_base.registry import layout
from importers_support import coco_folder, run, write_broken_images, write_png
from support.s3server import S3_SERVERS


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
    assert out.count("  label ") == 1 and re.search(r"\n  cat +1 +1 +1\n  dog +1 +2 +1\n", out), out  # the summary prints once
    assert out.count("train/cat/notes.txt") == 1, "the skipped list prints once"
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


# --------------------------------------------------------------------------- duplicates left by older versions (issue 20.3)


def plant_duplicate(registry: Registry, item, *, created_at: str) -> str:
    """Another item at ``item``'s path, as two concurrent adds of the older version made it: its own random id,
    bytes, ground truth and record, and the path entry naming the one written last (this one)."""
    ds_id = item.dataset_id
    twin = {**item.to_dict(), "id": uuid.uuid4().hex, "created_at": created_at}
    registry.store.put_bytes(layout.item_binary(ds_id, twin["id"]), registry.read_item(item))
    registry.store.put_json(layout.ground_truth(ds_id, twin["id"]), {**registry.store.get_json(layout.ground_truth(ds_id, item.id)), "item_id": twin["id"]})
    registry.store.put_json(layout.item_path(ds_id, item.path), {"id": twin["id"]})
    registry.store.put_json(layout.item_record(ds_id, twin["id"]), twin)
    return twin["id"]


def test_a_rerun_keeps_one_of_the_duplicate_items_an_older_version_left_and_reports_the_rest(capsys, tmp_path):
    """Issue 20.3: duplicates left by concurrent imports stayed ("already there") and were listed, predicted and
    evaluated twice. A rerun keeps the item the path's entry names (what a lookup by path returns) and removes
    the others with their bytes, ground truth and predictions; the next rerun has nothing to do."""
    root = tmp_path / "pets"
    for rel in ("train/cat/a.png", "train/dog/b.png", "test/cat/c.png"):
        write_png(root / rel, value=10)
    store = str(tmp_path / "store")
    assert run(capsys, "dataset", "import", str(root), "--store", store)[0] == 0
    with Registry.open(store) as registry:
        ds = registry.get_dataset("pets")
        a, b = (registry.find_item(ds, p) for p in ("train/cat/a.png", "train/dog/b.png"))
        twin_a = plant_duplicate(registry, a, created_at="2020-01-01T00:00:00.000+00:00")  # older, and named by the entry
        twin_b1 = plant_duplicate(registry, b, created_at="2030-01-01T00:00:00.000+00:00")
        twin_b2 = plant_duplicate(registry, b, created_at="2031-01-01T00:00:00.000+00:00")
        registry.store.put_json(layout.predictions(ds.id, a.id, "m" * 32, 1), {"planted": True})
        assert registry.count_items(ds) == 6
    code, out, err = run(capsys, "dataset", "import", str(root), "--store", store)
    assert code == 0, err
    assert "added 0 item(s), 3 already there" in out
    assert "removed 3 duplicate item(s) at 2 path(s)" in out
    assert f"train/cat/a.png: kept {twin_a}, removed {a.id}" in out
    assert f"train/dog/b.png: kept {twin_b2}, removed {', '.join(sorted([b.id, twin_b1]))}" in out
    with Registry.open(store) as registry:
        ds = registry.get_dataset("pets")
        items = by_path(registry, "pets")
        assert registry.count_items(ds) == 3 and items["train/cat/a.png"].id == twin_a and items["train/dog/b.png"].id == twin_b2
        for gone in (a.id, b.id, twin_b1):
            assert not registry.store.exists(layout.item_record(ds.id, gone))
            assert not list(registry.store.list(f"datasets/{ds.id}/annotations/{gone}/"))
            assert not registry.store.exists(layout.item_binary(ds.id, gone))
        assert [a.label for a in registry.get_ground_truth(items["train/cat/a.png"])] == ["cat"]
    code, out, err = run(capsys, "dataset", "import", str(root), "--store", store)
    assert code == 0 and "added 0 item(s), 3 already there" in out and "removed" not in out


def test_without_a_path_entry_naming_one_the_oldest_duplicate_is_kept(tmp_path):
    """The Python API (``import_directory``): the path entry names none of the duplicates (it was lost), so the
    oldest (``created_at``, then id) is kept, and the entry is written to name it."""
    root = tmp_path / "pets"
    write_png(root / "cat" / "a.png")
    with Registry.open(str(tmp_path / "store")) as registry:
        import_directory(registry, root, "pets")
        ds = registry.get_dataset("pets")
        a = registry.find_item(ds, "cat/a.png")
        older = plant_duplicate(registry, a, created_at="2000-01-01T00:00:00.000+00:00")
        registry.store.delete(layout.item_path(ds.id, "cat/a.png"))
        result = import_directory(registry, root, "pets")
        assert [(d.path, d.kept, d.removed) for d in result.duplicates_removed] == [("cat/a.png", older, (a.id,))]
        assert [i.id for i in registry.iter_items(ds)] == [older] and registry.find_item(ds, "cat/a.png").id == older
        assert import_directory(registry, root, "pets").duplicates_removed == []


# --------------------------------------------------------------------------- names no key can hold (issue 20.8)

#: File names legal on ext4 that no store key can hold: 251 and 254 bytes (too long once ``.json`` is added),
#: a newline, a carriage return, a tab, DEL, a backslash, bytes that are not UTF-8.
UNSTORABLE = [b"L" * 247 + b".png", b"L" * 250 + b".png", b"new\nline.png", b"cr\rx.png", b"tab\tx.png", b"del\x7f.png", b"back\\slash.png", b"latin1-\xe9.png"]


def test_names_no_store_key_can_hold_are_skipped_and_counted_and_the_import_completes(capsys, tmp_path):
    """Issue 20.8: a 254-byte file name (legal on ext4) or one holding a newline stopped the whole import, and every
    rerun stopped at the same file. They are skipped and counted like hidden files; the longest storable name
    (250 bytes: the path entry adds ``.json``) is imported; a rerun has nothing to do."""
    root = tmp_path / "pets"
    folder = root / "train" / "cat"
    write_png(folder / "ok.png")
    longest = "M" * 246 + ".png"
    write_png(folder / longest)
    for name in UNSTORABLE:
        with open(os.fsencode(folder) + b"/" + name, "wb") as fh:
            fh.write((folder / "ok.png").read_bytes())
    write_png(root / ("d" * 255) / "x.png")  # a folder name of 255 bytes is fine
    store = str(tmp_path / "store")
    code, out, err = run(capsys, "dataset", "import", str(root), "--store", store)
    assert code == 0, err
    unstorable = len(UNSTORABLE)
    assert "added 3 item(s), 0 already there" in out
    assert f"warning: {unstorable} file(s) skipped: " in out
    assert "control character or backslash in the name (cannot be a store key) 5" in out
    assert "name too long for a store key 2" in out and "name is not UTF-8 (cannot be a store key) 1" in out
    assert "'train/cat/new\\nline.png': control character" in out  # one line per entry, escaped
    with Registry.open(store) as registry:
        assert sorted(by_path(registry, "pets")) == sorted([f"train/cat/{longest}", "train/cat/ok.png", "d" * 255 + "/x.png"])
        assert registry.get_dataset("pets").metadata["import"]["complete"] is True
    code, out, err = run(capsys, "dataset", "import", str(root), "--store", store)
    assert code == 0 and "added 0 item(s), 3 already there" in out and f"warning: {unstorable} file(s) skipped: " in out


def test_add_item_refuses_an_unstorable_path_naming_it_and_writes_nothing(tmp_path):
    with Registry.open(str(tmp_path / "store")) as registry:
        ds = registry.create_dataset("d")
        for path in ("L" * 251, "a/" + "L" * 247 + ".png", "new\nline.png", "back\\slash.png", "del\x7f.png", "bad\udcff.png"):
            with pytest.raises(ValidationError, match="cannot be a store key|too long for a store key"):
                registry.add_item(ds, path, b"x")
        registry.add_item(ds, "a/" + "L" * 246 + ".png", b"x")
        assert [i.path for i in registry.iter_items(ds)] == ["a/" + "L" * 246 + ".png"]
        kinds = sorted(o.key.split("/")[2] for o in registry.store.list(layout.dataset_prefix(ds.id)))
        assert kinds == ["binaries", "dataset.json", "paths", "record-pages", "records"]  # the one item's, nothing more


@pytest.mark.s3
@pytest.mark.parametrize("s3_server", S3_SERVERS, indirect=True)
def test_a_path_too_long_for_the_s3_key_with_the_store_prefix_is_skipped_up_front(capsys, tmp_path, s3_store_uri):
    """A whole key is at most 1024 bytes on both suite servers, the store's prefix included: the path that fits
    exactly is imported, one byte longer is skipped before anything is written (it was a server error mid-import)."""
    prefix = s3_store_uri.split("/", 3)[3]
    root = tmp_path / "deep"
    with Registry.open(s3_store_uri) as registry:
        entry_room = 1024 - len(prefix) - 1 - len(layout.item_path("0" * 32, "x")) + 1  # bytes left for the path
    folders = "/".join(["f" * 200] * 4)
    fits = folders + "/" + "n" * (entry_room - len(folders) - 1 - 4) + ".png"
    over = folders + "/" + "o" * (entry_room - len(folders) - 4) + ".png"
    assert len(fits) == entry_room and len(over) == entry_room + 1
    for rel in (fits, over):
        write_png(root / rel)
    code, out, err = run(capsys, "dataset", "import", str(root), "--store", s3_store_uri)
    assert code == 0, err
    assert "added 1 item(s)" in out and "skipped 1 entry" in out and f"{over}: name too long for a store key" in out
    with Registry.open(s3_store_uri) as registry:
        assert list(by_path(registry, "deep")) == [fits]


def test_a_file_where_the_dataset_has_a_file_above_it_is_skipped_and_the_rest_imported(capsys, tmp_path):
    """A path is a file or a folder, never both. The source's ``shot.png`` became a folder of images after its first
    import: the rerun stopped at ``shot.png/1.png`` every time, so the new ``dog/b.png`` was never imported."""
    root = tmp_path / "pets"
    write_png(root / "cat" / "a.png")
    write_png(root / "cat" / "shot.png")
    store = str(tmp_path / "store")
    assert run(capsys, "dataset", "import", str(root), "--store", store)[0] == 0
    (root / "cat" / "shot.png").unlink()
    write_png(root / "cat" / "shot.png" / "1.png")
    write_png(root / "dog" / "b.png")
    for added in (1, 0):
        code, out, err = run(capsys, "dataset", "import", str(root), "--store", store)
        assert code == 0, err
        assert f"added {added} item(s)" in out and "skipped 1 entry" in out
        assert "cat/shot.png/1.png: a file or folder of an item already in the dataset" in out
    with Registry.open(store) as registry:
        assert sorted(by_path(registry, "pets")) == ["cat/a.png", "cat/shot.png", "dog/b.png"]


def test_an_import_whose_new_dataset_another_import_creates_meanwhile_joins_that_dataset(tmp_path):
    """Two imports of one source into a new dataset: the second found no dataset, then the first created it
    before the second could, and the second failed with "a dataset named 'pets' already exists"."""
    root = tmp_path / "pets"
    for rel in ("cat/a.png", "dog/b.png", "cat/c.png"):
        write_png(root / rel)
    store = str(tmp_path / "store")
    with Registry.open(store) as first, Registry.open(store) as second:
        read = second.store.get_json
        overtaken: list[str] = []

        def get_json(key: str):
            try:
                return read(key)
            except NotFoundError:
                if key == layout.dataset_name("pets") and not overtaken:
                    overtaken.append(key)  # the first import runs whole between the second's look-up and its create
                    import_directory(first, root, "pets")
                raise

        second.store.get_json = get_json
        result = import_directory(second, root, "pets")
        assert overtaken and result.added == 0 and result.already_there == 3
        assert [d.name for d in second.list_datasets()] == ["pets"] and result.dataset.id == second.get_dataset("pets").id
        assert sorted(by_path(second, "pets")) == ["cat/a.png", "cat/c.png", "dog/b.png"]


@pytest.mark.parametrize("moment", ["opening", "listing", "adding"])
def test_an_import_whose_dataset_another_import_deletes_meanwhile_goes_on_in_the_dataset_the_name_holds(tmp_path, moment):
    """CI: three imports of one source into a new dataset at once. Two created it; the third found the first's
    and imported into it; then the second's name entry came last and the first deleted its own dataset, under
    the third, which failed with "no dataset with id ...: it was deleted". The third now imports into the
    named dataset, whether the delete came as it read the dataset's record, its items or added files, and
    what it wrote into the deleted one is removed."""
    root = tmp_path / "pets"
    write_png(root / "cat/a.png")
    store = str(tmp_path / "store")
    with Registry.open(store) as first, Registry.open(store) as third:
        lost = import_directory(first, root, "pets").dataset  # the first import's dataset, which it will delete
        for rel in ("dog/b.png", "cat/c.png"):
            write_png(root / rel)
        won: list[Dataset] = []

        def overtaken(method):
            def call(key: str, *args, **kwargs):
                if lost.id in key and not won:  # the third is about to read the lost dataset or add to it
                    won.append(Dataset(name="pets", labels=lost.labels, metadata={"import": {**lost.metadata["import"], "complete": False}}))
                    first.store.put_json(layout.dataset_record(won[0].id), won[0].to_dict())
                    first.store.put_json(layout.dataset_name("pets"), {"id": won[0].id})
                    first.delete_dataset(lost)
                return method(key, *args, **kwargs)

            return call

        for method in {"opening": ("get_json",), "listing": ("list",), "adding": ("put_bytes", "put_file")}[moment]:
            setattr(third.store, method, overtaken(getattr(third.store, method)))
        result = import_directory(third, root, "pets")
        assert won and result.dataset.id == won[0].id and result.added == 3
        assert [d.id for d in third.list_datasets()] == [won[0].id] and third.get_dataset("pets").metadata["import"]["complete"] is True
        assert sorted(by_path(third, "pets")) == ["cat/a.png", "cat/c.png", "dog/b.png"]
        assert not list(first.store.list(layout.dataset_prefix(lost.id))) and not first.store.exists(layout.dataset_record(lost.id))


# --------------------------------------------------------------------------- broken images, missing test subset


def test_images_that_do_not_decode_are_skipped_by_name_with_a_count_and_kept_by_keep_broken(capsys, tmp_path):
    """Seen: a truncated PNG imported fine and only failed at ``prepare``; so would an empty file or a note named .jpg."""
    root = tmp_path / "pets"
    for rel in ("train/cat/a.png", "train/dog/b.png", "test/cat/c.png", "test/dog/d.png"):
        write_png(root / rel)
    broken = {f"train/cat/{name}": why for name, why in write_broken_images(root / "train" / "cat").items()}
    store = str(tmp_path / "store")
    code, out, err = run(capsys, "dataset", "import", str(root), "--store", store)
    assert code == 0, err
    assert "added 4 item(s)" in out and "train 2, validation 0, test 2" in out
    assert "skipped 3 entries:" in out
    for path, why in broken.items():
        assert out.count(path) == 1 and f"  {path}: {why}" in out, out
    assert re.search(r"\n  cat +1 +0 +1\n", out), "the summary after the import counts what was written"
    with Registry.open(store) as registry:
        assert sorted(by_path(registry, "pets")) == ["test/cat/c.png", "test/dog/d.png", "train/cat/a.png", "train/dog/b.png"]

    code, out, err = run(capsys, "dataset", "import", str(root), "--store", store, "--keep-broken")
    assert code == 0, err
    assert "added 3 item(s), 4 already there" in out and "broken image" not in out
    # a rerun decodes nothing already imported: the broken files kept now are "already there", not skipped
    code, out, err = run(capsys, "dataset", "import", str(root), "--store", store)
    assert code == 0, err
    assert "added 0 item(s), 7 already there" in out and "broken image" not in out
    with Registry.open(store) as registry:
        assert sorted(by_path(registry, "pets")) == sorted(["test/cat/c.png", "test/dog/d.png", "train/cat/a.png", "train/dog/b.png", *broken])


def test_broken_images_are_skipped_in_coco_yolo_and_csv_sources(capsys, tmp_path):
    """Seen: a zero-byte image in a YOLO folder stopped the whole import with "cannot identify image file"."""
    store = str(tmp_path / "store")
    coco = tmp_path / "coco"
    coco_folder(coco)
    write_broken_images(coco / "images")
    data = json.loads((coco / "annotations" / "instances.json").read_text())
    data["images"] += [{"id": 4, "file_name": "truncated.png", "width": 64, "height": 64}, {"id": 5, "file_name": "empty.png"}]
    (coco / "annotations" / "instances.json").write_text(json.dumps(data))

    yolo = tmp_path / "yolo"
    write_png(yolo / "images" / "train" / "a.png")
    write_broken_images(yolo / "images" / "train")
    (yolo / "labels" / "train").mkdir(parents=True)
    (yolo / "labels" / "train" / "empty.txt").write_text("0 0.5 0.5 0.2 0.4\n")
    (yolo / "classes.txt").write_text("car\n")

    table = tmp_path / "shots"
    write_png(table / "a.png")
    write_broken_images(table)
    (table / "list.csv").write_text("path,label,subset\na.png,cat,test\ntruncated.png,cat,test\nempty.png,dog,test\nnotes.jpg,dog,test\n")

    for source, name, broken in (
        (coco, "coco", ["truncated.png", "empty.png"]),
        (yolo, "yolo", ["images/train/truncated.png", "images/train/empty.png", "images/train/notes.jpg"]),
        (table / "list.csv", "shots", ["truncated.png", "empty.png", "notes.jpg"]),
    ):
        code, out, err = run(capsys, "dataset", "import", str(source), "--name", name, "--store", store)
        assert code == 0, err
        for path in broken:
            assert f"  {path}: broken image" in out, out
        with Registry.open(store) as registry:
            assert not set(broken) & set(by_path(registry, name))


def test_subsets_without_test_warn_once_what_evaluate_will_need(capsys, tmp_path):
    """Seen: importing ``train/`` and ``val/`` printed ``test 0`` with no warning, and the README's next ``evaluate`` failed."""
    root = tmp_path / "pets"
    for rel in ("train/cat/a.png", "train/dog/b.png", "val/cat/c.png", "val/dog/d.png"):
        write_png(root / rel)
    code, out, err = run(capsys, "dataset", "import", str(root), "--store", str(tmp_path / "store"))
    assert code == 0, err
    assert "test 0" in out
    warning = "warning: no test subset: `evaluate` needs --subset validation or a test/ folder"
    assert out.count(warning) == 1 and out.count("no test subset") == 1, out
    write_png(root / "test" / "cat" / "e.png")
    code, out, err = run(capsys, "dataset", "import", str(root), "--store", str(tmp_path / "store"))
    assert code == 0, err
    assert "no test subset" not in out
