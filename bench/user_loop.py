"""The prediction loop a user writes by hand with PyTorch, run as its own process (``bench/user_compare.py``).

    python -m bench.user_loop --store URI --items FILE --out PREFIX --work W --device-s S [--batch-size 16] [--reader s3torch]

A map-style ``Dataset`` that reads one PNG per item and decodes it with PIL to an RGB array,
``DataLoader(num_workers=2)``, the bench's NumPy model (``bench.models.CostModelAdapter``'s
``predict``) in the main process, and one plain ``json.dump`` per item (to a file, or a
``PUT`` with the plain ``minio`` client on S3) from a ``ThreadPoolExecutor``. Reading: a file
on the local store; on S3 AWS's ``s3torchconnector`` ``S3MapDataset`` (``--reader s3torch``,
the default: its CRT client, endpoint and keys from ``AWS_*``, path-style addressing when
``MODEL_ADAPTER_S3_PATH_STYLE`` is set) or a ``GET`` with the plain ``minio`` client
(``--reader minio``). Nothing of the framework's reading, decoding,
stamping or writing is used: this is the loop a user compares ``model-adapter predict`` with.
``--items`` is a JSON list of the items' store keys, listed beforehand (a user knows their files).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

warnings.filterwarnings("ignore", message="The given NumPy array is not writable", category=UserWarning)


class Bucket:
    """Bytes in and out of ``s3://bucket/prefix`` with the plain minio client (endpoint and keys from ``AWS_*``)."""

    def __init__(self, uri: str) -> None:
        from minio import Minio

        parsed = urlparse(uri)
        endpoint = urlparse(os.environ["AWS_ENDPOINT_URL"])
        self.bucket, self.prefix = parsed.netloc, parsed.path.strip("/")
        self.client = Minio(
            endpoint.netloc,
            access_key=os.environ["AWS_ACCESS_KEY_ID"],
            secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
            secure=endpoint.scheme == "https",
            region=os.environ.get("AWS_REGION", "us-east-1"),
        )

    def key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def get(self, key: str) -> bytes:
        resp = self.client.get_object(self.bucket, self.key(key))
        try:
            return resp.read()
        finally:
            resp.close()
            resp.release_conn()

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(self.bucket, self.key(key), io.BytesIO(data), len(data), content_type="application/json")


#: How the loop reads items on S3: AWS's s3torchconnector (the competitor), or the plain minio client.
READERS = ("s3torch", "minio")


def _is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def decode(data: bytes) -> Any:
    """A PNG's bytes as an RGB uint8 tensor (PIL)."""
    import torch
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return torch.from_numpy(np.asarray(img.convert("RGB")))


def decode_s3_reader(reader: Any) -> Any:
    """``S3MapDataset``'s transform: the object's bytes, decoded."""
    return decode(reader.read())


def s3torch_images(uri: str, keys: list[str]) -> Any:
    """An ``s3torchconnector.S3MapDataset`` over the items' objects, each decoded by ``decode_s3_reader``."""
    from s3torchconnector import S3ClientConfig, S3MapDataset

    bucket, prefix = urlparse(uri).netloc, urlparse(uri).path.strip("/")
    path_style = os.environ.get("MODEL_ADAPTER_S3_PATH_STYLE", "").lower() in ("1", "true", "yes", "on")
    return S3MapDataset.from_objects(
        [f"s3://{bucket}/{prefix}/{k}" if prefix else f"s3://{bucket}/{k}" for k in keys],
        region=os.environ.get("AWS_REGION", "us-east-1"),
        endpoint=os.environ.get("AWS_ENDPOINT_URL"),
        transform=decode_s3_reader,
        s3client_config=S3ClientConfig(force_path_style=path_style),
    )


class Images:
    """``torch.utils.data.Dataset``: item ``i``'s PNG, read and decoded with PIL to an RGB uint8 tensor."""

    def __init__(self, uri: str, keys: list[str]) -> None:
        self.uri, self.keys = uri, keys
        self._bucket: Bucket | None = None  # opened in each worker process

    def __len__(self) -> int:
        return len(self.keys)

    def read(self, key: str) -> bytes:
        if _is_s3(self.uri):
            if self._bucket is None:
                self._bucket = Bucket(self.uri)
            return self._bucket.get(key)
        with open(Path(urlparse(self.uri).path if self.uri.startswith("file:") else self.uri) / key, "rb") as fh:
            return fh.read()

    def __getitem__(self, i: int) -> Any:
        return decode(self.read(self.keys[i]))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.user_loop", description=__doc__)
    ap.add_argument("--store", required=True)
    ap.add_argument("--items", required=True, type=Path, help="JSON list of the items' store keys")
    ap.add_argument("--out", required=True, help="key prefix (S3) or directory (local) for the predictions")
    ap.add_argument("--work", type=int, default=0)
    ap.add_argument("--device-s", type=float, default=0.0)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--reader", choices=READERS, default=READERS[0], help="how the items are read on S3 (default s3torch)")
    a = ap.parse_args(argv)

    from torch.utils.data import DataLoader

    from .models import CostModelAdapter

    keys = json.loads(a.items.read_text())
    model = CostModelAdapter(configuration={"work": a.work, "device_s_per_item": a.device_s})
    model.load("")
    bucket = Bucket(a.store) if _is_s3(a.store) else None
    out_dir = Path(a.out)
    if bucket is None:
        out_dir.mkdir(parents=True, exist_ok=True)

    def write(name: str, result: Any) -> None:
        doc = {"item": name, "model": "user-loop", "annotations": result.to_dict()}
        if bucket is not None:
            bucket.put(f"{a.out}/{name}.json", json.dumps(doc).encode())
        else:
            with open(out_dir / f"{name}.json", "w") as fh:
                json.dump(doc, fh)

    dataset = s3torch_images(a.store, keys) if bucket is not None and a.reader == "s3torch" else Images(a.store, keys)
    loader = DataLoader(dataset, batch_size=a.batch_size, num_workers=a.workers)
    futures = []
    with ThreadPoolExecutor() as pool:
        for b, batch in enumerate(loader):
            names = [k.replace("/", "_") for k in keys[b * a.batch_size : (b + 1) * a.batch_size]]
            for name, result in zip(names, model.predict(list(batch.numpy()))):
                futures.append(pool.submit(write, name, result))
        for f in futures:
            f.result()
    print(json.dumps({"predicted": len(futures)}))


if __name__ == "__main__":
    main()
