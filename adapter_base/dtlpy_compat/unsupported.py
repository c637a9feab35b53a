"""What to use instead of the dtlpy names this layer does not provide (platform calls with no meaning here)."""

from __future__ import annotations

_HINTS: dict[str, str] = {
    "dtlpy.login": "there is no platform to log in to; the store is --store / MODEL_ADAPTER_STORE",
    "dtlpy.setenv": "there is no platform environment; the store is --store / MODEL_ADAPTER_STORE",
    "dtlpy.projects": "there are no projects; datasets and models live in the store (model-adapter dataset/model ...)",
    "dtlpy.datasets": "use self.model_entity.dataset, or adapter_base.Registry.get_dataset",
    "dtlpy.models": "the framework loads the model: the adapter gets it as self.model_entity (see model-adapter model show NAME)",
    "dtlpy.items": "items reach the adapter through prepare_item_func(item) and the prepared layout (data_path/<subset>/items)",
    "dtlpy.services": "there are no services; run the CLI (model-adapter train|predict|evaluate) or a pipeline",
    "dtlpy.utilities.converter": "convert the prepared layout yourself in convert_from_dtlpy (data_path/<subset>/json holds dtlpy's JSON)",
    "dtlpy.utilities.reports": "the evaluation report (model-adapter evaluate) draws the confusion matrix and the training curves",
    "dtlpy.Polyline": "polylines are not an annotation type here; use dl.Polygon, dl.Point or dl.Box",
    "Model.bucket": "a model's files are its versions: leave them in output_path (train) or local_path (save)",
    "Model.dataset.items": "items reach the adapter through prepare_item_func(item) and the prepared layout",
    "Model.metrics.list": "curves logged with metrics.create are in self.curves (and model.metrics['curves'] once saved)",
    "Dataset.platform_url": "there is no platform web page; see model-adapter dataset show",
    "Dataset.items": "items reach the adapter through prepare_item_func(item) and the prepared layout",
    "dtlpy DatasetGenerator": "pass data_path=os.path.join(data_path, '<subset>'), the subset folder prepare_data wrote",
    "Item.annotations": "ground truth is in the prepared layout (data_path/<subset>/json); predictions are returned by predict",
}

_DEFAULT = "use adapter_base's own API instead (docs/dtlpy.md lists what the layer provides)"


def hint(name: str) -> str:
    """What to use instead of the dtlpy name ``name`` (e.g. ``dtlpy.projects`` or ``Model.bucket``)."""
    for key in sorted(_HINTS, key=len, reverse=True):
        if name.startswith(key) and name[len(key) : len(key) + 1] in ("", ".", "(", " "):
            return _HINTS[key]
    return _DEFAULT
