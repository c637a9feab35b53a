"""The adapter contract: the guide's exact signatures, default item preparation, configuration, device."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adapter_base import AnnotationCollection, BaseModelAdapter, ValidationError, load_adapter_class
from adapter_base.config import FRAMEWORK_DEFAULTS
from core_support import BRIGHT, DARK, brightness_dataset


class GuideAdapter(BaseModelAdapter):
    """Written exactly as the user guide shows the user functions."""

    def load(self, local_path, **kwargs):
        """Load your model from files"""
        weights = Path(local_path) / "weights.txt"
        self.model = float(weights.read_text()) if weights.exists() else 128.0

    def save(self, local_path, **kwargs):
        """Save your model's state"""
        Path(f"{local_path}/weights.txt").write_text(str(self.model))

    def train(self, data_path, **kwargs):
        """Train your model on new data"""
        self.train_kwargs = kwargs
        self.model = 100.0

    def predict(self, batch, **kwargs):
        """Make predictions and return Dataloop annotations"""
        results = []
        for x in batch:
            coll = AnnotationCollection()
            coll.add_classification(BRIGHT if x >= self.model else DARK, confidence=0.7)
            results.append(coll)
        return results

    def prepare_item_func(self, item):
        """Prepare items for prediction"""
        return float(np.asarray(Image.open(io.BytesIO(self.item_bytes(item))).convert("L")).mean())


SUBSETS = {"train": {"subset": "train"}, "validation": {"subset": "validation"}}


@pytest.fixture
def ds(local_registry):
    return brightness_dataset(local_registry)


def test_guide_signatures_load_save_predict_evaluate(local_registry, ds):
    model = local_registry.create_model("guide", labels=[BRIGHT, DARK], dataset_id=ds.id, subsets=SUBSETS)
    adapter = GuideAdapter(registry=local_registry)
    adapter.load_from_model(model)
    assert adapter.model == 128.0
    adapter.model = 120.0
    saved = adapter.save_to_model()
    assert saved.version == 1
    fresh = GuideAdapter(registry=local_registry)
    fresh.load_from_model("guide")
    assert fresh.model == 120.0
    report = fresh.predict_dataset(ds, filters={"subset": "test"}, batch_size=3)
    assert report.ok and report.succeeded == 4, report.summary()
    result = fresh.evaluate_model("guide", ds, filters={"subset": "test"})
    assert result.metrics["accuracy"] == 1.0


def test_guide_signature_train(local_registry, ds):
    """The guide's ``def train(self, data_path, **kwargs)`` must work with ``train_model``."""
    model = local_registry.create_model("guide-train", labels=[BRIGHT, DARK], dataset_id=ds.id, subsets=SUBSETS)
    adapter = GuideAdapter(registry=local_registry)
    trained = adapter.train_model(model)
    assert trained.status == "trained" and trained.version == 1
    assert "on_epoch_end_callback" in adapter.train_kwargs


def test_missing_user_functions_name_themselves(local_registry):
    class Empty(BaseModelAdapter):
        pass

    model = local_registry.create_model("empty")
    with pytest.raises(NotImplementedError, match=r"load\(local_path"):
        Empty(registry=local_registry).load_from_model(model)


# --------------------------------------------------------------------------- default prepare_item_func


def image_bytes(img: Image.Image, fmt: str, **save_kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save_kw)
    return buf.getvalue()


@pytest.fixture
def prep(local_registry):
    ds = local_registry.create_dataset("prep")
    adapter = GuideAdapter(registry=local_registry)

    def prepare(path, data, mimetype=None):
        item = local_registry.add_item(ds, path, data, mimetype=mimetype)
        return BaseModelAdapter.prepare_item_func(adapter, item)

    return prepare


def test_default_prepare_honours_exif_orientation(prep):
    img = Image.new("RGB", (40, 20), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 20, 20))  # left half red, right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    rotated = prep("rot.jpg", image_bytes(img, "JPEG", exif=exif.tobytes(), quality=95))
    assert rotated.shape == (40, 20, 3) and rotated.dtype == np.uint8
    assert rotated[5, 10, 0] > 200 and rotated[5, 10, 2] < 60  # top is the red (left) half
    assert rotated[35, 10, 2] > 200 and rotated[35, 10, 0] < 60
    upright = prep("plain.jpg", image_bytes(img, "JPEG", quality=95))
    assert upright.shape == (20, 40, 3)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "LA", "I;16", "1", "CMYK"])
def test_default_prepare_converts_to_rgb(prep, mode):
    fmt, ext = ("JPEG", "jpg") if mode == "CMYK" else ("TIFF", "tif") if mode == "I;16" else ("PNG", "png")
    img = Image.new("RGB", (7, 5), (10, 200, 30)).convert(mode)
    arr = prep(f"img.{ext}", image_bytes(img, fmt))
    assert isinstance(arr, np.ndarray) and arr.shape == (5, 7, 3) and arr.dtype == np.uint8


@pytest.mark.parametrize("fmt,ext", [("GIF", "gif"), ("BMP", "bmp"), ("WEBP", "webp"), ("TIFF", "tiff")])
def test_default_prepare_other_image_formats(prep, fmt, ext):
    arr = prep(f"a.{ext}", image_bytes(Image.new("RGB", (3, 2), (255, 255, 255)), fmt))
    assert arr.shape == (2, 3, 3)


def test_default_prepare_text_items_become_str(prep):
    assert prep("a.txt", "héllo\nwörld".encode()) == "héllo\nwörld"
    assert prep("bom.txt", "\ufeffwith bom".encode("utf-8")) == "with bom"
    assert prep("doc.json", b'{"a": 1}') == '{"a": 1}'
    with pytest.raises(ValidationError) as exc:
        prep("bad.txt", b"\xff\xfe\xfa")
    assert "not UTF-8" in str(exc.value)


def test_default_prepare_errors_name_the_item(prep):
    with pytest.raises(ValidationError) as exc:
        prep("broken.png", b"\x89PNG\r\n\x1a\nbroken")
    assert "broken.png" in str(exc.value) and exc.value.field == "data"
    with pytest.raises(ValidationError, match="empty file"):
        prep("empty.png", b"")
    with pytest.raises(ValidationError, match="override prepare_item_func"):
        prep("blob.bin", b"\x00", mimetype="application/octet-stream")


# --------------------------------------------------------------------------- configuration and device


class Configured(GuideAdapter):
    DEFAULT_CONFIGURATION = {"batch_size": 4, "lr": 0.1, "opt": {"name": "sgd", "momentum": 0.9}}


def test_configuration_layers(local_registry):
    model = local_registry.create_model("cfg", configuration={"lr": 0.5, "opt": {"momentum": 0.5}})
    adapter = Configured(registry=local_registry, configuration={"batch_size": 2})
    assert adapter.configuration["batch_size"] == 2 and adapter.configuration["io_workers"] == FRAMEWORK_DEFAULTS["io_workers"]
    adapter.load_from_model(model)
    assert adapter.configuration["lr"] == 0.5
    assert adapter.configuration["opt"] == {"name": "sgd", "momentum": 0.5}
    assert adapter.configuration["batch_size"] == 2  # the caller's override wins


def test_device_is_cpu_here_and_configurable(local_registry):
    adapter = GuideAdapter(registry=local_registry)
    assert adapter.device == "cpu"
    model = local_registry.create_model("dev", configuration={"device": "cuda:1"})
    adapter.load_from_model(model)
    assert adapter.device == "cuda:1"
    assert GuideAdapter(registry=local_registry, configuration={"device": "mps"}).device == "mps"


def test_load_adapter_class():
    cls = load_adapter_class("core_support:BrightnessAdapter")
    assert issubclass(cls, BaseModelAdapter) and cls.__name__ == "BrightnessAdapter"
    assert load_adapter_class("examples.digits.adapter:DigitsAdapter").__name__ == "DigitsAdapter"
    for bad in ("core_support", "core_support:Nope", "no_such_module_xyz:A", "core_support:png_bytes", "a:b:c"):
        with pytest.raises(ValidationError, match=r"adapter\.import_path"):
            load_adapter_class(bad)
