"""The latency proxy (``support.tcpproxy``, ``latency_s``) the latency bench puts in front of a loopback server:
every exchange costs the delay once, and a response arrives whole and unchanged."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from adapter_base.storage.counting import CountingStore
from adapter_base.storage.s3 import S3Store
from support.s3server import S3_SERVERS, S3TestServer
from support.tcpproxy import CuttingProxy

pytestmark = [pytest.mark.s3, pytest.mark.parametrize("s3_server", S3_SERVERS[:1], indirect=True)]
LATENCY_S = 0.2


def test_each_request_costs_the_latency_once_and_parallel_requests_overlap(s3_server: S3TestServer, s3_store_uri: str, monkeypatch):
    big = random.Random(7).randbytes(3 * 1024 * 1024)  # many chunks: delayed together, not one latency each
    with CuttingProxy(s3_server.s3_port, latency_s=LATENCY_S) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        store = CountingStore(S3Store.from_uri(s3_store_uri).open())
        try:
            for i in range(8):
                store.put_bytes(f"k{i}", b"%d" % i)
            store.put_bytes("big", big)
            store.reset()
            t = time.perf_counter()
            assert [store.get_bytes(f"k{i}") for i in range(4)] == [b"0", b"1", b"2", b"3"]
            sequential = time.perf_counter() - t
            t = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                assert list(pool.map(store.get_bytes, [f"k{i}" for i in range(8)])) == [b"%d" % i for i in range(8)]
            parallel = time.perf_counter() - t
            t = time.perf_counter()
            assert store.get_bytes("big") == big
            whole = time.perf_counter() - t
        finally:
            store.close()
    assert store.snapshot() == {"get": 13}
    assert sequential >= 4 * LATENCY_S, sequential
    assert LATENCY_S <= parallel < 8 * LATENCY_S, f"8 requests at once took {parallel:.3f} s: they were delayed one after the other"
    assert LATENCY_S <= whole < 8 * LATENCY_S, f"a 3 MiB response took {whole:.3f} s: its chunks were delayed one after the other"


def test_a_put_costs_the_latency_once(s3_server: S3TestServer, s3_store_uri: str, monkeypatch):
    """urllib3 sends a PUT's headers and body in two writes: the proxy passes each on at once, as a network hop
    does. (With Nagle's algorithm on its sockets the body waited for the server's delayed ACK: a PUT took the
    latency and 40 ms more, three round trips at 20 ms.)"""
    with CuttingProxy(s3_server.s3_port, latency_s=LATENCY_S) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        store = S3Store.from_uri(s3_store_uri).open()
        try:
            store.put_bytes("warm", b"x")
            times = []
            for i in range(5):
                t = time.perf_counter()
                store.put_bytes(f"p{i}", b"%d" % i * 2048)
                times.append(time.perf_counter() - t)
        finally:
            store.close()
    assert LATENCY_S <= sorted(times)[2] < LATENCY_S + 0.03, times
