"""A TCP proxy on 127.0.0.1 that can cut a connection in the middle of a response, or delay every response.

Put it between a client and a real server to lose a connection at a chosen byte
(fault injection for resumable reads), optionally changing the world just before; or,
with ``latency_s``, to give a loopback server a cloud store's round trip (every byte the
server sends reaches the client ``latency_s`` later, so each request costs that much more).

    python tests/support/tcpproxy.py TARGET_PORT --latency-ms 20   # prints the proxy's port, runs until killed
"""

from __future__ import annotations

import argparse
import contextlib
import queue
import socket
import threading
import time
from typing import Callable


class CuttingProxy:
    """Forwards every connection to ``127.0.0.1:target_port``; ``cut_after`` arms one cut.

    ``latency_s``: every chunk the server sends is passed on ``latency_s`` after it arrived
    (a one-way delay; chunks keep their order and spacing, so bandwidth is not cut).
    ``connections`` counts accepted connections, ``bytes_to_clients`` the bytes sent back,
    ``cuts`` the cuts made and ``errors`` what a ``before_cut`` raised.
    """

    def __init__(self, target_port: int, *, latency_s: float = 0.0) -> None:
        self.target_port = target_port
        self.latency_s = float(latency_s)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.connections = 0
        self.bytes_to_clients = 0
        self.cuts = 0
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._cut_budget: int | None = None
        self._before_cut: Callable[[], None] | None = None
        self._open: set[socket.socket] = set()
        self._closed = False
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT`` of the proxy."""
        return f"http://127.0.0.1:{self.port}"

    def cut_after(self, n_bytes: int, before_cut: Callable[[], None] | None = None) -> None:
        """Cut the connection that carries the ``n_bytes``-th byte sent back to a client from
        now on, right after that byte; ``before_cut`` runs first. Once."""
        with self._lock:
            self._cut_budget = n_bytes
            self._before_cut = before_cut

    def close(self) -> None:
        """Stop listening and drop every connection."""
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            socks = list(self._open)
        for sock in socks:
            _drop(sock)

    def __enter__(self) -> "CuttingProxy":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                _drop(client)
                continue
            for sock in (client, upstream):
                # A network hop passes each segment on as it comes: without this, Nagle's algorithm here held
                # a request's second write (urllib3 sends the headers, then the body) until the server's
                # delayed ACK, about 40 ms, which no client or server of the real path would see.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.connections += 1
                self._open |= {client, upstream}
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            if self.latency_s > 0:
                threading.Thread(target=self._delay, args=(upstream, client), daemon=True).start()
            else:
                threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _delay(self, src: socket.socket, dst: socket.socket) -> None:
        """Pass what ``src`` sends on to ``dst`` ``latency_s`` after it arrived (no cuts on a delayed connection)."""
        chunks: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()

        def send() -> None:
            try:
                while data := (got := chunks.get())[1]:
                    if (wait := got[0] + self.latency_s - time.monotonic()) > 0:
                        time.sleep(wait)
                    dst.sendall(data)
                    with self._lock:
                        self.bytes_to_clients += len(data)
            except OSError:
                pass
            finally:
                self._close_pair(src, dst)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        try:
            while data := src.recv(65536):
                chunks.put((time.monotonic(), data))
        except OSError:
            pass
        finally:
            chunks.put((time.monotonic(), b""))

    def _pump(self, src: socket.socket, dst: socket.socket, to_client: bool) -> None:
        try:
            while data := src.recv(65536):
                cut = False
                if to_client:
                    with self._lock:
                        if self._cut_budget is not None and len(data) >= self._cut_budget:
                            data, cut = data[: self._cut_budget], True
                            self._cut_budget = None
                        elif self._cut_budget is not None:
                            self._cut_budget -= len(data)
                        self.bytes_to_clients += len(data)
                        before = self._before_cut if cut else None
                dst.sendall(data)
                if cut:
                    if before is not None:
                        try:
                            before()
                        except Exception as exc:  # noqa: BLE001 - reported to the test
                            self.errors.append(exc)
                    self.cuts += 1
                    break
        except OSError:
            pass
        finally:
            self._close_pair(src, dst)

    def _close_pair(self, src: socket.socket, dst: socket.socket) -> None:
        """Drop both ends of a forwarded connection and forget them."""
        for sock in (src, dst):
            _drop(sock)
        with self._lock:
            self._open -= {src, dst}


def _drop(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


def main(argv: list[str] | None = None) -> None:
    """Run a proxy until killed; its port is the one line printed."""
    ap = argparse.ArgumentParser(prog="tcpproxy", description="a TCP proxy on 127.0.0.1 that delays every response")
    ap.add_argument("target_port", type=int)
    ap.add_argument("--latency-ms", type=float, default=0.0, help="one-way delay added to everything the server sends")
    a = ap.parse_args(argv)
    proxy = CuttingProxy(a.target_port, latency_s=a.latency_ms / 1000)
    print(proxy.port, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
