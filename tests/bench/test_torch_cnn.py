"""The PyTorch example adapter (``examples/torch_cnn``) and its benchmark script, on CPU.

Skipped when PyTorch is not installed: it is an optional extra (``pip install -e '.[torch]'``).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: the torch_cnn example needs `pip install -e '.[torch]'` (torch==2.13.0)")

import numpy as np  # noqa: E402

from examples.torch_cnn.adapter import SmallCNN, TorchCNNAdapter  # noqa: E402
from examples.torch_cnn.dataset import COLOURS, make_colours  # noqa: E402

CONFIG = {"input_size": 16, "width": 8, "depth": 2, "epochs": 4, "learning_rate": 0.05, "train_batch_size": 8, "device": "cpu"}


@pytest.fixture
def colours(bench_registry):
    ds = make_colours(bench_registry, "colours", 48, size=20)
    model = bench_registry.create_model(
        "cnn",
        adapter="examples.torch_cnn.adapter:TorchCNNAdapter",
        labels=ds.labels,
        dataset_id=ds.id,
        subsets={"train": {"subset": "train"}, "validation": {"subset": "validation"}},
        configuration=CONFIG,
    )
    return ds, model


def test_prepare_gives_a_normalised_chw_float_array(bench_registry, colours):
    ds, model = colours
    adapter = TorchCNNAdapter(registry=bench_registry)
    adapter.load_from_model(model)
    item = next(iter(bench_registry.iter_items(ds)))
    x = adapter.prepare_item_func(item)
    assert x.shape == (3, 16, 16) and x.dtype == np.float32
    assert -3 < float(x.mean()) < 3


def test_train_save_load_and_predict_round_trip(bench_registry, colours):
    ds, model = colours
    adapter = TorchCNNAdapter(registry=bench_registry)
    trained = adapter.train_model(model)
    assert trained.version == 1 and {f.path for f in trained.artifacts.files} == {"weights.pt", "labels.json"}
    test_items = list(bench_registry.iter_items(ds, {"subset": "test"}))
    report = adapter.predict_items(test_items, batch_size=4)
    assert report.ok and report.succeeded == len(test_items) > 0
    first = {it.id: bench_registry.get_predictions(it, trained.id).annotations[0].label for it in test_items}
    assert set(first.values()) <= set(COLOURS)

    fresh = TorchCNNAdapter(registry=bench_registry)
    fresh.load_from_model(trained.id)
    batch = [fresh.prepare_item_func(it) for it in test_items]
    again = [c.annotations[0].label for c in fresh.predict(batch, items=test_items)]
    assert again == [first[it.id] for it in test_items], "the saved weights give the same predictions"
    result = fresh.evaluate_model(trained.id, ds.id, filters={"subset": "test"})
    assert 0.0 <= result.metrics["accuracy"] <= 1.0


def test_network_shapes():
    net = SmallCNN(num_classes=5, width=4, depth=3).eval()
    with torch.inference_mode():
        assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 5)


@pytest.mark.slow
def test_gpu_bench_script_runs_on_cpu(tmp_path):
    from bench import torch_gpu

    out = torch_gpu.run(tmp_path, n=24, repeats=1, batch_size=8, image_size=24, input_size=16, device="cpu", workers=1, progress=lambda _: None)
    assert out["device"] == "cpu" and out["n"] == 24
    assert set(out["items_per_s"]) == set(torch_gpu.MEASURES) and out["ratio"] > 0
