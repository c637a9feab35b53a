"""Listing the objects under an S3 prefix in key order, on servers that list by key and on those that walk directories.

S3 (and MinIO, rclone) list recursively in key order: ``flat`` pages through that listing
and resumes after the last key when a page fails. SeaweedFS lists in directory-walk order
(``a/x`` before ``a-b``): ``walk`` lists one directory level at a time and sorts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

import urllib3
from minio import Minio

from ..base import ObjectInfo
from ..external_sort import sorted_lines

#: Runs one request with the store's retries and error translation: ``call(what, fn)``.
Call = Callable[[str, Callable[[], Any]], Any]


def lists_like_a_filesystem(http: urllib3.PoolManager, endpoint: str, bucket: str) -> bool:
    """True for SeaweedFS (its ``Server`` header), which lists in directory-walk order; False when unsure."""
    try:
        resp = http.request("HEAD", f"{endpoint}/{bucket}", retries=False, timeout=5.0)
        server = resp.headers.get("Server", "")
    except Exception:  # noqa: BLE001 - detection is best effort
        return False
    return "seaweedfs" in server.lower()


@dataclass(frozen=True)
class Lister:
    """The objects of ``bucket`` under a full prefix, keys given relative to ``root`` (the store's prefix)."""

    client: Minio
    bucket: str
    root: str
    call: Call

    def flat(self, full_prefix: str) -> Iterator[ObjectInfo]:
        """Recursive listing in the server's (S3: key) order; resumes after the last key on failure."""
        last: str | None = None
        it: Iterator[Any] | None = None
        done = object()

        def step() -> Any:
            nonlocal it
            if it is None:
                it = iter(
                    self.client.list_objects(
                        self.bucket, prefix=full_prefix or None, recursive=True, start_after=last
                    )
                )
            try:
                return next(it, done)
            except BaseException:
                it = None  # restart the listing after ``last``
                raise

        while True:
            obj = self.call(f"list {full_prefix!r}", step)
            if obj is done:
                return
            if obj.object_name == last:  # rclone serve s3 lists a key twice after concurrent writes of it
                continue
            last = obj.object_name
            if obj.is_dir or obj.object_name.endswith("/"):
                continue
            yield ObjectInfo(key=obj.object_name[len(self.root) :], size=int(obj.size or 0), etag=obj.etag or None)

    def walk(self, full_prefix: str) -> Iterator[ObjectInfo]:
        """Directory-by-directory listing sorted into key order (for servers whose recursive
        listing is in directory-walk order, e.g. SeaweedFS, which puts ``a/x`` before ``a-b``).

        A level is sorted with at most ``external_sort.RUN_LINES`` entries in memory (the
        rest in sorted runs on disk), so a directory of a million records is never held
        whole; deeper levels are listed on demand. A name holding a newline is no valid key
        (``validate_key``) and is skipped.
        """
        # Entries travel as "name NUL dir-flag NUL size NUL etag" lines: NUL sorts below every
        # character, so the lines sort as their names do (a directory's ends with "/", as keys sort).
        level = self.call(
            f"list {full_prefix!r}",
            lambda: sorted_lines(
                f"{o.object_name}\0{'d' if o.is_dir else 'f'}\0{int(o.size or 0)}\0{o.etag or ''}"
                for o in self.client.list_objects(self.bucket, prefix=full_prefix or None, recursive=False)
                if "\n" not in o.object_name
            ),
        )
        previous = None
        for line in level:
            name, kind, size, etag = line.split("\0")
            if not name.startswith(full_prefix) or name == previous:  # a name listed twice (see ``flat``) counts once
                continue
            previous = name
            if kind == "d" or name.endswith("/"):
                if name != full_prefix:  # SeaweedFS lists an empty directory as itself
                    yield from self.walk(name)
            else:
                yield ObjectInfo(key=name[len(self.root) :], size=int(size), etag=etag or None)
