"""Adapters written for Dataloop's SDK, the way published ones are (``import dtlpy as dl``), for the dtlpy layer tests.

Nothing here imports adapter_base: these modules must load unedited where dtlpy is absent.
"""

import json
import logging
import os

import numpy as np
import torch
import dtlpy as dl
from dtlpy.utilities.dataset_generators.dataset_generator import collate_torch
from dtlpy.utilities.dataset_generators.dataset_generator_torch import DatasetGeneratorTorch

logger = logging.getLogger("dtlpy-style-adapters")


def to_tensor(image):
    """HxW or HxWx3 uint8 -> 1xHxW float tensor of the brightness per pixel, centred on 0."""
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim == 3:
        arr = arr.mean(axis=2)
    return torch.from_numpy(arr[None] / 255.0 - 0.5)


@dl.Package.decorators.module(description="dtlpy-style torch classifier", name="model-adapter", init_inputs={"model_entity": dl.Model})
class TorchClassifier(dl.BaseModelAdapter):
    """Bright vs dark 8x8 images: a linear layer over the pixels, trained with DatasetGeneratorTorch."""

    def __init__(self, model_entity: dl.Model = None):
        self.device = torch.device("cpu")  # before super().__init__, as published adapters do
        super().__init__(model_entity)

    def load(self, local_path, **kwargs):
        n = len(self.model_entity.id_to_label_map)
        self.model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, n))
        weights = os.path.join(local_path, self.configuration.get("weights_filename", "model.pth"))
        if os.path.isfile(weights):
            self.model.load_state_dict(torch.load(weights, map_location=self.device))
        self.model.to(self.device)

    def save(self, local_path, **kwargs):
        torch.save(self.model.state_dict(), os.path.join(local_path, "best.pth"))
        self.configuration["weights_filename"] = "best.pth"

    def train(self, data_path, output_path, **kwargs):
        num_epochs = self.configuration.get("num_epochs", 4)
        on_epoch_end_callback = kwargs.get("on_epoch_end_callback")
        datasets = {
            phase: DatasetGeneratorTorch(
                data_path=os.path.join(data_path, subset),
                dataset_entity=self.model_entity.dataset,
                annotation_type=dl.AnnotationType.CLASSIFICATION,
                transforms=[to_tensor],
                id_to_label_map=self.model_entity.id_to_label_map,
                class_balancing=phase == "train",
            )
            for phase, subset in (("train", "train"), ("val", "validation"))
        }
        loaders = {p: torch.utils.data.DataLoader(d, batch_size=4, shuffle=True, collate_fn=collate_torch) for p, d in datasets.items()}
        optimizer = torch.optim.SGD(self.model.parameters(), lr=0.05)
        criterion = torch.nn.CrossEntropyLoss()
        for epoch in range(num_epochs):
            for phase in ("train", "val"):
                total, running = 0, 0.0
                for batch in loaders[phase]:
                    inputs = torch.stack(tuple(batch["image"]), 0).to(self.device)
                    labels = torch.stack(tuple(batch["annotations"]), 0).long().squeeze(1)
                    with torch.set_grad_enabled(phase == "train"):
                        loss = criterion(self.model(inputs), labels)
                        if phase == "train":
                            optimizer.zero_grad()
                            loss.backward()
                            optimizer.step()
                    total += inputs.size(0)
                    running += loss.item() * inputs.size(0)
                samples = [dl.PlotSample(figure="loss", legend=phase, x=epoch, y=running / max(total, 1))]
                self.model_entity.metrics.create(samples=samples, dataset_id=self.model_entity.dataset_id)
            torch.save(self.model.state_dict(), os.path.join(output_path, "best.pth"))
            if on_epoch_end_callback is not None:
                on_epoch_end_callback(i_epoch=epoch, n_epoch=num_epochs)

    def predict(self, batch, **kwargs):
        with torch.no_grad():
            probs = torch.softmax(self.model(torch.stack([to_tensor(img) for img in batch])), dim=1)
        out = []
        for p in probs:
            score, index = torch.max(p, 0)
            collection = dl.AnnotationCollection()
            collection.add(
                annotation_definition=dl.Classification(label=self.model_entity.id_to_label_map.get(int(index.item()), "UNKNOWN")),
                model_info={"name": self.model_entity.name, "confidence": score.item(), "model_id": self.model_entity.id, "dataset_id": self.model_entity.dataset_id},
            )
            out.append(collection)
        return out

    def embed(self, batch, **kwargs):
        return [to_tensor(img).flatten()[:4].tolist() for img in batch]


class BrightBoxes(dl.BaseModelAdapter):
    """Boxes around the bright pixels; ``train`` learns the threshold from the boxes in dtlpy's JSON it reads itself."""

    def load(self, local_path, **kwargs):
        path = os.path.join(local_path, "threshold.json")
        self.model = json.load(open(path)) if os.path.isfile(path) else {"threshold": 128}

    def save(self, local_path, **kwargs):
        json.dump(self.model, open(os.path.join(local_path, "threshold.json"), "w"))

    def train(self, data_path, output_path, **kwargs):
        inside = []
        json_dir = os.path.join(data_path, "train", "json")
        for root, _, files in os.walk(json_dir):
            for name in files:
                record = json.load(open(os.path.join(root, name)))
                image = np.asarray(dl_image(os.path.join(data_path, "train", "items", record["filename"].lstrip("/"))))
                for ann in record["annotations"]:
                    if ann["type"] == "box":
                        (p0, p1) = ann["coordinates"]
                        inside.append(image[int(p0["y"]) : int(p1["y"]) + 1, int(p0["x"]) : int(p1["x"]) + 1].min())
        generator = DatasetGeneratorTorch(
            data_path=os.path.join(data_path, "train"), dataset_entity=self.model_entity.dataset, annotation_type=dl.AnnotationType.BOX, id_to_label_map=self.model_entity.id_to_label_map
        )
        self.model = {"threshold": int(min(inside)) - 1, "boxes_seen": int(sum(len(s["annotations"]) for s in generator))}
        kwargs["on_epoch_end_callback"](0, 1)

    def predict(self, batch, **kwargs):
        out = []
        for image in batch:
            gray = np.asarray(image).mean(axis=2) if np.asarray(image).ndim == 3 else np.asarray(image)
            ys, xs = np.nonzero(gray > self.model["threshold"])
            collection = dl.AnnotationCollection()
            if len(xs):
                collection.add(
                    annotation_definition=dl.Box(left=float(xs.min()), top=float(ys.min()), right=float(xs.max()), bottom=float(ys.max()), label="square"),
                    model_info={"name": self.model_entity.name, "confidence": 0.9, "model_id": self.model_entity.id},
                )
            out.append(collection)
        return out


def dl_image(path):
    from PIL import Image

    return Image.open(path).convert("L")


class BrightMasks(dl.BaseModelAdapter):
    """Masks of the bright pixels; ``train`` reads label-id masks from DatasetGeneratorTorch (segmentation)."""

    def load(self, local_path, **kwargs):
        self.model = {"threshold": 128}

    def save(self, local_path, **kwargs):
        json.dump({"threshold": self.model["threshold"], "pixels": self.model.get("pixels", 0)}, open(os.path.join(local_path, "mask.json"), "w"))

    def prepare_item_func(self, item):
        return item.download(save_locally=False, to_array=True)

    def train(self, data_path, output_path, **kwargs):
        generator = DatasetGeneratorTorch(
            data_path=os.path.join(data_path, "train"), dataset_entity=self.model_entity.dataset, annotation_type=dl.AnnotationType.SEGMENTATION, label_to_id_map=self.model_entity.label_to_id_map
        )
        self.model["pixels"] = int(sum(int((s["annotations"] == self.model_entity.label_to_id_map["square"]).sum()) for s in generator))

    def predict(self, batch, **kwargs):
        out = []
        for image in batch:
            gray = image.mean(axis=2) if image.ndim == 3 else image
            mask = gray > self.model["threshold"]
            collection = dl.AnnotationCollection()
            collection.add(annotation_definition=dl.Segmentation(geo=mask, label="square"), model_info={"name": self.model_entity.name, "confidence": 0.8})
            collection.add(annotation_definition=dl.Polygon.from_segmentation(mask=mask, label="square"), model_info={"name": self.model_entity.name, "confidence": 0.7})
            out.append(collection)
        return out
