"""The hand-written loop on S3 (``bench/user_loop.py``): through s3torchconnector's ``S3MapDataset`` or plain minio GETs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("s3torchconnector")

from adapter_base.storage import open_store  # noqa: E402
from bench.common import REPO, synthetic_images, s3_uri, seaweed_server  # noqa: E402


@pytest.mark.slow
@pytest.mark.s3
@pytest.mark.parametrize("reader", ["s3torch", "minio"])
def test_the_loop_reads_every_item_from_seaweedfs_and_writes_one_json_each(tmp_path, reader):
    with seaweed_server(tmp_path) as _:
        uri = s3_uri()
        store = open_store(uri)
        keys = [f"items/{i}.png" for i in range(5)]
        for key, png in zip(keys, synthetic_images(5, size=32)):
            store.put_bytes(key, png)
        (tmp_path / "items.json").write_text(json.dumps(keys))
        env = dict(os.environ, PYTHONPATH=str(REPO))
        cmd = [sys.executable, "-m", "bench.user_loop", "--store", uri, "--items", str(tmp_path / "items.json"), "--out", "out",
               "--batch-size", "2", "--reader", reader]  # fmt: skip
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"predicted": 5}
        written = sorted(info.key for info in store.list("out/"))
        assert written == sorted(f"out/{k.replace('/', '_')}.json" for k in keys)
        assert json.loads(store.get_bytes(written[0]))["model"] == "user-loop"
