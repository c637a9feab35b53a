"""Reads that lose their connection mid-body resume, on each real server, and never splice
two versions of an object: the connection is cut by a proxy between the store and the
server, and the object is overwritten just before the cut.

SeaweedFS honours ``If-Match`` on the resuming ranged GET (412 when the object changed);
rclone ignores it, so the store also compares the resumed answer's ETag and size.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Callable, Iterator

import pytest

from adapter_base.errors import StoreError
from adapter_base.storage.s3 import DOWNLOAD_CHUNK, S3Store
from support.s3server import S3_SERVERS, S3TestServer
from support.tcpproxy import CuttingProxy

pytestmark = [pytest.mark.s3, pytest.mark.parametrize("s3_server", S3_SERVERS, indirect=True)]
MiB = 1024 * 1024
SIZE = 6 * MiB
#: Whether the server answers a ranged GET whose ``If-Match`` no longer holds with 412.
HONOURS_IF_MATCH = {"seaweedfs": True, "rclone": False}


@pytest.fixture
def proxy(s3_server: S3TestServer) -> Iterator[CuttingProxy]:
    """A proxy in front of ``s3_server`` that cuts connections on demand."""
    with CuttingProxy(s3_server.s3_port) as p:
        yield p
    assert p.errors == [], f"overwriting the object before the cut failed: {p.errors!r}"


@pytest.fixture
def store(proxy: CuttingProxy, s3_store_uri: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Store]:
    """An ``S3Store`` at a fresh prefix that reaches its server through ``proxy``."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    monkeypatch.setenv("MODEL_ADAPTER_S3_RETRY_DEADLINE", "20")
    s = S3Store.from_uri(s3_store_uri).open()
    yield s
    s.close()


def _versions() -> tuple[bytes, bytes]:
    """Two different objects of the same size (so only the ETag tells them apart)."""
    rng = random.Random(42)
    return rng.randbytes(SIZE), rng.randbytes(SIZE)


def _overwrite(server: S3TestServer, store: S3Store, key: str, data: bytes) -> Callable[[], None]:
    """A callable that replaces ``key`` with ``data`` directly on ``server`` (not through the proxy)."""

    def overwrite() -> None:
        server.client().put_object(store.bucket, f"{store.prefix}/{key}", io.BytesIO(data), len(data))

    return overwrite


def test_a_broken_download_resumes_where_it_stopped(store: S3Store, proxy: CuttingProxy, tmp_path: Path) -> None:
    v1, _ = _versions()
    store.put_bytes("obj", v1)
    sent = proxy.bytes_to_clients
    proxy.cut_after(4 * MiB)
    store.get_file("obj", tmp_path / "out.bin")
    assert proxy.cuts == 1
    assert (tmp_path / "out.bin").read_bytes() == v1
    resent = proxy.bytes_to_clients - sent - SIZE  # at most the chunk being read, plus headers
    assert resent < DOWNLOAD_CHUNK + 64 * 1024, f"{resent} bytes sent twice: the download started again"


def test_a_broken_read_resumes_the_same_version(store: S3Store, proxy: CuttingProxy) -> None:
    v1, _ = _versions()
    store.put_bytes("obj", v1)
    proxy.cut_after(3 * MiB)
    with store.open_read("obj") as fh:
        got = b"".join(iter(lambda: fh.read(256 * 1024), b""))
    assert proxy.cuts == 1 and got == v1


def test_a_download_restarts_from_zero_when_the_object_changed(
    store: S3Store,
    proxy: CuttingProxy,
    s3_server: S3TestServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
) -> None:
    v1, v2 = _versions()
    store.put_bytes("obj", v1)
    proxy.cut_after(3 * MiB, before_cut=_overwrite(s3_server, store, "obj", v2))
    store.get_file("obj", tmp_path / "out.bin")
    assert proxy.cuts == 1
    assert (tmp_path / "out.bin").read_bytes() == v2, "the file must be the new version whole, never a splice"
    assert "cannot resume reading 'obj' after" in caplog.text and "it changed on the server" in caplog.text
    # SeaweedFS refuses the stale If-Match; on rclone the resumed answer's ETag gives it away.
    server = request.node.callspec.params["s3_server"]
    assert ("PreconditionFailed" if HONOURS_IF_MATCH[server] else "ETag") in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_a_read_never_splices_two_versions(store: S3Store, proxy: CuttingProxy, s3_server: S3TestServer) -> None:
    v1, v2 = _versions()
    store.put_bytes("obj", v1)
    proxy.cut_after(3 * MiB, before_cut=_overwrite(s3_server, store, "obj", v2))
    got = bytearray()
    with store.open_read("obj") as fh:
        with pytest.raises(StoreError, match="cannot resume reading 'obj' after .*: it changed on the server"):
            while chunk := fh.read(256 * 1024):
                got += chunk
    assert proxy.cuts == 1
    assert 0 < len(got) < SIZE and v1.startswith(bytes(got)), "only bytes of the first version were returned"
    assert store.get_bytes("obj") == v2


def test_servers_differ_on_if_match(s3_server: S3TestServer, s3_bucket: str, request: pytest.FixtureRequest) -> None:
    """Why the store does not trust ``If-Match`` alone (see the module docstring)."""
    client = s3_server.client()
    client.put_object(s3_bucket, "if-match/obj", io.BytesIO(b"hello world"), 11)
    stale = {"If-Match": '"0123456789abcdef0123456789abcdef"'}
    server = request.node.callspec.params["s3_server"]
    if HONOURS_IF_MATCH[server]:
        with pytest.raises(Exception, match="PreconditionFailed"):
            client.get_object(s3_bucket, "if-match/obj", offset=3, request_headers=stale)
    else:
        resp = client.get_object(s3_bucket, "if-match/obj", offset=3, request_headers=stale)
        assert resp.read() == b"lo world", f"{server} ignores If-Match"
