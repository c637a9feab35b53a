"""S3-only behaviour of ``S3Store`` on each real server (SeaweedFS, rclone): URIs, errors, secrets, retries.

Every test runs on both servers; where the servers differ (listing order, multipart
ETags) the test says which server does what.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
import traceback
import tracemalloc
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from adapter_base.errors import NotFoundError, StoreError
from adapter_base.storage import open_store
from adapter_base.storage.s3 import S3Store
from support.s3server import S3_SERVERS, S3TestServer, free_ports

pytestmark = [pytest.mark.s3, pytest.mark.parametrize("s3_server", S3_SERVERS, indirect=True)]
MiB = 1024 * 1024


def _everything_said(exc: BaseException, store: object, caplog: pytest.LogCaptureFixture) -> str:
    """Message, full chained traceback, repr of the store and every log line."""
    return "\n".join(
        [str(exc), repr(exc), "".join(traceback.format_exception(exc)), repr(store), str(store), caplog.text]
    )


def _random_file(path: Path, size: int) -> Path:
    path.write_bytes(random.Random(size).randbytes(size))
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------- URIs
def test_from_uri_takes_the_environment(s3_env: dict[str, str], s3_store_uri: str) -> None:
    store = S3Store.from_uri(s3_store_uri)
    assert store.endpoint == s3_env["AWS_ENDPOINT_URL"]
    assert store.uri == s3_store_uri
    bucket, prefix = s3_store_uri[len("s3://") :].split("/", 1)
    assert (store.bucket, store.prefix) == (bucket, prefix)
    assert isinstance(open_store(s3_store_uri), S3Store)


@pytest.mark.parametrize("uri", ["s3://", "s3:///only/a/prefix"])
def test_uri_without_bucket(s3_env: dict[str, str], uri: str) -> None:
    with pytest.raises(StoreError, match="bucket"):
        open_store(uri)


def test_uri_with_embedded_credentials_is_refused_without_echo(s3_env: dict[str, str]) -> None:
    with pytest.raises(StoreError) as info:
        open_store("s3://AKIDEXAMPLE:hunter2-secret@bucket/p")
    assert "hunter2-secret" not in str(info.value) and "AKIDEXAMPLE" not in str(info.value)


def test_store_at_bucket_root(s3_env: dict[str, str], s3_server: S3TestServer) -> None:
    bucket = f"root-{uuid.uuid4().hex[:10]}"
    s3_server.make_bucket(bucket)
    store = open_store(f"s3://{bucket}")
    assert store.uri == f"s3://{bucket}"
    store.put_bytes("top", b"1")
    store.put_bytes("dir/x", b"2")
    assert [i.key for i in store.list()] == ["dir/x", "top"]
    assert s3_server.client().stat_object(bucket, "dir/x").size == 1


def test_prefixes_are_isolated(s3_env: dict[str, str], s3_bucket: str) -> None:
    base = f"iso-{uuid.uuid4().hex[:8]}"
    a, ab = open_store(f"s3://{s3_bucket}/{base}/a"), open_store(f"s3://{s3_bucket}/{base}/ab")
    a.put_bytes("k", b"a")
    ab.put_bytes("k", b"ab")
    assert [i.key for i in a.list()] == ["k"] and a.get_bytes("k") == b"a"
    assert [i.key for i in ab.list()] == ["k"] and ab.get_bytes("k") == b"ab"
    parent = open_store(f"s3://{s3_bucket}/{base}")
    assert [i.key for i in parent.list()] == ["a/k", "ab/k"]
    assert a.delete_prefix("") == 1
    assert [i.key for i in parent.list()] == ["ab/k"]


# ---------------------------------------------------------------- bad setups
def test_missing_bucket_error_names_the_bucket(s3_env: dict[str, str]) -> None:
    store = open_store("s3://no-such-bucket-4242/some/prefix")
    start = time.monotonic()
    with pytest.raises(StoreError) as info:
        store.put_bytes("k", b"x")
    message = str(info.value)
    assert "no-such-bucket-4242" in message and "does not exist" in message and "create" in message
    assert time.monotonic() - start < 5, "a missing bucket must not be retried"
    with pytest.raises(StoreError, match="no-such-bucket-4242"):
        list(store.list())


@pytest.mark.parametrize("which", ["AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"])
def test_wrong_credentials_are_reported_without_secrets(
    s3_env: dict[str, str],
    s3_store_uri: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    which: str,
) -> None:
    wrong = f"wrong-{uuid.uuid4().hex}"
    monkeypatch.setenv(which, wrong)
    caplog.set_level(logging.DEBUG)
    store = open_store(s3_store_uri)
    start = time.monotonic()
    with pytest.raises(StoreError) as info:
        store.get_bytes("k")
    assert time.monotonic() - start < 5, "rejected credentials must not be retried"
    message = str(info.value).lower()
    assert "credentials" in message and "rejected" in message
    said = _everything_said(info.value, store, caplog)
    for secret in (wrong, s3_env["AWS_SECRET_ACCESS_KEY"], s3_env["AWS_ACCESS_KEY_ID"]):
        assert secret not in said


def test_repr_and_uri_hold_no_credentials(s3_store: S3Store, s3_env: dict[str, str]) -> None:
    s3_store.put_bytes("k", b"x")
    with pytest.raises(NotFoundError) as info:
        s3_store.get_bytes("missing")
    shown = " ".join([repr(s3_store), str(s3_store), s3_store.uri, s3_store.endpoint, str(info.value)])
    assert s3_env["AWS_SECRET_ACCESS_KEY"] not in shown
    assert s3_env["AWS_ACCESS_KEY_ID"] not in shown
    assert repr(s3_store).startswith("S3Store('s3://")


def test_unreachable_server_gives_up_at_the_deadline(
    s3_env: dict[str, str], s3_store_uri: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (port,) = free_ports(1)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("MODEL_ADAPTER_S3_RETRY_DEADLINE", "1")
    caplog.set_level(logging.DEBUG)
    store = open_store(s3_store_uri)
    start = time.monotonic()
    with pytest.raises(StoreError) as info:
        store.put_bytes("k", b"x")
    elapsed = time.monotonic() - start
    assert 1 <= elapsed < 10
    assert "retrying" in str(info.value) and f"127.0.0.1:{port}" in str(info.value)
    assert any("retry" in r.getMessage() for r in caplog.records)
    said = _everything_said(info.value, store, caplog)
    assert s3_env["AWS_SECRET_ACCESS_KEY"] not in said and s3_env["AWS_ACCESS_KEY_ID"] not in said


def test_missing_key_is_not_retried(s3_store: S3Store) -> None:
    s3_store.put_bytes("present", b"x")
    start = time.monotonic()
    for _ in range(5):
        with pytest.raises(NotFoundError):
            s3_store.get_bytes("absent")
    assert time.monotonic() - start < 2


# ------------------------------------------------------------------- listing
#: Which listing ``list_mode="auto"`` picks on each server: SeaweedFS lists recursively in
#: directory-walk order (``a/x`` before ``a-b``), rclone in key order.
AUTO_WALKS = {"seaweedfs": True, "rclone": False}


def test_list_modes_agree_and_auto_picks_the_walk_where_needed(
    s3_env: dict[str, str], s3_store_uri: str, s3_server: S3TestServer, request: pytest.FixtureRequest
) -> None:
    keys = ["m/a", "m/a-b", "m/a.c/d", "m/a0", "m/b/c/d", "m/b-c", "n", "m/b/c-e"]
    auto = open_store(s3_store_uri)
    for key in keys:
        auto.put_bytes(key, b"x")
    assert [i.key for i in auto.list()] == sorted(keys)
    server = request.node.callspec.params["s3_server"]
    assert auto._walk_listing is AUTO_WALKS[server], f"auto list mode on {server}"
    walk = S3Store.from_uri(s3_store_uri, list_mode="walk")
    flat = S3Store.from_uri(s3_store_uri, list_mode="flat")
    assert [i.key for i in walk.list("m/")] == sorted(k for k in keys if k.startswith("m/"))
    assert sorted(i.key for i in flat.list()) == sorted(keys)
    if not AUTO_WALKS[server]:
        assert [i.key for i in flat.list()] == sorted(keys), f"{server} lists in key order"


def test_listing_spans_pages(s3_store: S3Store) -> None:
    keys = [f"many/{i:05d}" for i in range(1100)] + ["many/sub/x", "many-other"]
    with ThreadPoolExecutor(32) as pool:  # also exercises the connection pool (>= 32)
        list(pool.map(lambda k: s3_store.put_bytes(k, b"."), keys))
    listed = [i.key for i in s3_store.list("many/")]
    assert listed == sorted(k for k in keys if k.startswith("many/"))
    assert s3_store.delete_prefix("many") == 1101
    assert [i.key for i in s3_store.list()] == ["many-other"]


# ----------------------------------------------------------------- streaming
def test_large_upload_is_multipart_and_streams(
    s3_env: dict[str, str], s3_store_uri: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """With 5 MiB parts and 2 threads, a 40 MB round trip never holds the file in memory.

    The ETag of a multipart object is ``<md5 of the part md5s>-<parts>`` on SeaweedFS (as on
    AWS) and the plain MD5 of the whole object on rclone: the store assumes neither.
    """
    size = 40 * MiB + 3
    src = _random_file(tmp_path / "src.bin", size)
    store = S3Store.from_uri(s3_store_uri, part_size=5 * MiB, num_parallel_uploads=2)
    store.open()
    tracemalloc.start()
    try:
        store.put_file("big.bin", src)
        _, upload_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        store.get_file("big.bin", tmp_path / "dst.bin")
        _, download_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert upload_peak < 30 * MiB, f"put_file peaked at {upload_peak / MiB:.0f} MiB"
    assert download_peak < 8 * MiB, f"get_file peaked at {download_peak / MiB:.0f} MiB"
    assert _sha(tmp_path / "dst.bin") == _sha(src)
    etag = (store.stat("big.bin").etag or "").strip('"')
    if request.node.callspec.params["s3_server"] == "rclone":
        assert etag == hashlib.md5(src.read_bytes()).hexdigest(), f"rclone: plain MD5 expected, got {etag!r}"
    else:
        assert etag.endswith("-9"), f"expected a 9-part multipart etag, got {etag!r}"


# ------------------------------------------------------------------- retries
@pytest.mark.slow
def test_operations_survive_a_server_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server: S3TestServer
) -> None:
    """Kill the server, start an upload, bring the server back ~2 s later: the upload completes.

    It runs on a server of its own, of the same kind as ``s3_server``.
    """
    server = type(s3_server)(tmp_path / "server")
    try:
        server.start()
        server.make_bucket("restart")
        for var, value in {**server.env(), "MODEL_ADAPTER_S3_PATH_STYLE": "true"}.items():
            monkeypatch.setenv(var, value)
        monkeypatch.setenv("MODEL_ADAPTER_S3_RETRY_DEADLINE", "60")
        store = open_store("s3://restart/p")
        store.put_bytes("before", b"persisted")
        src = _random_file(tmp_path / "upload.bin", 20 * MiB + 1)  # multipart (16 MiB parts)

        server.kill()
        outcome: dict[str, object] = {}

        def upload() -> None:
            try:
                store.put_file("after.bin", src)
                outcome["ok"] = time.monotonic()
            except BaseException as exc:  # noqa: BLE001 - reported below
                outcome["error"] = exc

        worker = threading.Thread(target=upload, daemon=True)
        worker.start()
        time.sleep(2)
        assert worker.is_alive() and not outcome, f"the upload cannot finish while the server is down: {outcome}"
        restarted = time.monotonic()
        server.start()
        worker.join(60)
        assert not worker.is_alive(), "upload still running 60 s after the restart"
        assert "error" not in outcome, f"upload failed: {outcome.get('error')!r}"
        assert outcome["ok"] >= restarted  # type: ignore[operator]

        assert store.get_bytes("before") == b"persisted"
        store.get_file("after.bin", tmp_path / "back.bin")
        assert _sha(tmp_path / "back.bin") == _sha(src)

        # A read across a second outage, through the helper's own restart().
        server.kill()
        reader = ThreadPoolExecutor(1).submit(store.get_bytes, "before")
        time.sleep(1)
        server.restart()
        assert reader.result(timeout=60) == b"persisted"
    finally:
        server.stop()
