"""Smoke test of ``bench/artifacts_bench.py`` and checks of the faster artifact transfer (digests still verified)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from adapter_base import StoreError
from adapter_base.registry import artifacts
from adapter_base.storage import LocalStore, open_store
from adapter_base.storage.digest import OVERLAP_HASH_MIN
from bench import artifacts_bench as ab

MiB = 1 << 20


@pytest.mark.s3
@pytest.mark.slow
def test_artifact_bench_runs_both_shapes(seaweed, s3_env, s3_bucket, tmp_path, monkeypatch):
    monkeypatch.setattr(ab, "BENCH_BUCKET", s3_bucket)
    monkeypatch.setattr(ab, "LARGE_CANDIDATES", [(5 * MiB, 2)])
    monkeypatch.setattr(ab, "SMALL_CANDIDATES", [4])
    large = ab.run_shape("large", seaweed, tmp_path, repeats=1, large_mb=11, progress=lambda _: None)
    small = ab.run_shape("small", seaweed, tmp_path, repeats=1, small_count=24, small_kib=4, progress=lambda _: None)
    assert large["files"] == 1 and large["bytes"] == 11 * MiB
    assert small["files"] == 24
    for out in (large, small):
        assert out["save_vs_plain"] > 0 and out["load_vs_plain"] > 0
        assert set(out["mib_per_s"]) == set(ab.MEASURES)


def _tree(root: Path) -> dict[str, bytes]:
    (root / "d").mkdir(parents=True)
    files = {"big.bin": os.urandom(OVERLAP_HASH_MIN + 12345), "small.txt": b"hello", "d/x.bin": os.urandom(3000)}
    for rel, data in files.items():
        (root / rel).write_bytes(data)
    return files


@pytest.mark.parametrize("backend", ["local", pytest.param("s3", marks=pytest.mark.s3)])
def test_upload_and_download_tree_keep_exact_digests(backend, request, tmp_path):
    store = LocalStore(tmp_path / "store") if backend == "local" else open_store(request.getfixturevalue("s3_store_uri"))
    from concurrent.futures import ThreadPoolExecutor

    files = _tree(tmp_path / "src")
    with ThreadPoolExecutor(4) as pool:
        rows = artifacts.upload_tree(store, tmp_path / "src", lambda rel: f"art/{rel}", pool)
        assert {r.path: r.sha256 for r in rows} == {rel: hashlib.sha256(d).hexdigest() for rel, d in files.items()}
        assert {r.path: r.size for r in rows} == {rel: len(d) for rel, d in files.items()}
        artifacts.download_tree(store, rows, lambda rel: f"art/{rel}", tmp_path / "dst", pool)
    for rel, data in files.items():
        assert (tmp_path / "dst" / rel).read_bytes() == data


@pytest.mark.parametrize("size", [100, OVERLAP_HASH_MIN + 1])
def test_a_digest_mismatch_still_leaves_no_file(size, tmp_path):
    store = LocalStore(tmp_path / "store")
    data = os.urandom(size)
    store.put_bytes("obj", data)
    dest = tmp_path / "out" / "obj"
    with pytest.raises(StoreError, match="digest mismatch"):
        artifacts.download_verified(store, "obj", dest, "0" * 64, size)
    assert not dest.exists()
    assert list((tmp_path / "out").iterdir()) == []  # no partial file either
    artifacts.download_verified(store, "obj", dest, hashlib.sha256(data).hexdigest(), size)
    assert dest.read_bytes() == data
