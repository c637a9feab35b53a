"""A tree transfer that fails part-way leaves nothing running behind the error.

Artifact uploads and downloads run many files at once. When one fails, the others that
were in flight must be finished (or never started) before the error is raised: otherwise a
late upload of the failed attempt can overwrite the files of the next attempt (a retry of
``save_to_model`` in the same process) and publish a version whose digests do not match, or
a late download can leave a ``.partial`` file in a directory the caller has given up on.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from adapter_base import Registry, StoreError
from adapter_base.registry import layout
from reliability_support import SlowAdapter, dataset_with_model

pytestmark = [pytest.mark.reliability]


def test_a_failed_upload_leaves_no_upload_running_and_the_retry_publishes_a_good_version(local_registry: Registry, tmp_path: Path) -> None:
    _, _, model = dataset_with_model(local_registry, 1, configuration={"artifact_files": 6, "artifact_bytes": 1000})
    store = local_registry.store
    original = store.put_file
    finished: list[float] = []
    lock = threading.Lock()
    inject = threading.Event()
    inject.set()

    def put_file(key, path, *a, **kw):
        if key.endswith("blob-002.bin") and inject.is_set():
            raise StoreError(f"{store.uri}: put_file {key!r} failed: injected")
        if key.endswith("blob-004.bin"):
            time.sleep(0.5)  # still uploading when blob-002 fails
        digest = original(key, path, *a, **kw)
        with lock:
            finished.append(time.monotonic())
        return digest

    store.put_file = put_file
    adapter = SlowAdapter(registry=local_registry)
    adapter.load_from_model(model)
    out = tmp_path / "output"  # kept, as train_model's output directory is
    with pytest.raises(StoreError, match="injected"):
        adapter.save_to_model(local_path=str(out))
    raised = time.monotonic()
    time.sleep(0.7)
    assert finished and max(finished) <= raised, "an upload of the failed save finished after save_to_model raised"
    assert local_registry.get_model(model.id).version == 1

    inject.clear()  # the retry uploads everything
    saved = adapter.save_to_model(local_path=str(out))
    assert saved.version == 2
    local_registry.download_artifacts(saved, tmp_path / "v2")  # every digest verifies
    assert not store.exists(layout.manifest(model.id, 3))


def test_a_failed_download_leaves_no_download_running(local_registry: Registry, tmp_path: Path) -> None:
    _, _, model = dataset_with_model(local_registry, 1, configuration={"artifact_files": 6, "artifact_bytes": 1000})
    store = local_registry.store
    bad = layout.artifact_file(model.id, 1, "blob-002.bin")
    store.put_bytes(bad, b"tampered")
    original = store.open_read

    def open_read(key):
        if key.endswith("blob-004.bin"):
            time.sleep(0.5)  # still downloading when blob-002 fails its digest check
        return original(key)

    store.open_read = open_read
    target = tmp_path / "target"
    with pytest.raises(StoreError, match="digest mismatch"):
        SlowAdapter(registry=local_registry).load_from_model(model.id, local_path=str(target))
    assert not list(target.rglob("*.partial")), "a download was still running after load_from_model raised"
    snapshot = sorted(p.name for p in target.iterdir())
    time.sleep(0.7)
    assert sorted(p.name for p in target.iterdir()) == snapshot, "files appeared after load_from_model raised"
    assert "blob-002.bin" not in snapshot
