"""Local directories the framework writes to: paths kept under their root, and user folders never emptied.

Two rules hold for every local path the framework touches:

- ``safe_join`` resolves a path built from stored values (names, ids, manifest paths)
  under its root and refuses one that leaves it, so a tampered record cannot make the
  framework write or delete outside the adapter home or a target directory.
- ``user_dir`` is how a directory the *caller* named is prepared: it is emptied only if
  the framework created it (it holds the ``MARKER`` file); a folder with files the
  framework did not put there is never touched, a fresh subfolder is used instead.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from .errors import ValidationError

log = logging.getLogger(__name__)

#: The file that marks a caller-named folder as created by the framework (it goes with the folder).
MARKER = ".model-adapter-dir"
MARKER_TEXT = "Created by model-adapter: its contents are replaced on the next load_from_model / prepare_data.\n"


def safe_join(root: str | Path, *parts: str, what: str = "path") -> Path:
    """``root / parts...`` resolved, if it stays inside ``root`` (resolved); otherwise a ``ValidationError``.

    ``what`` names the thing the parts come from in the error (``artifacts``, ``Model.name``).
    Symbolic links are resolved, so a link planted inside ``root`` cannot lead out of it.
    """
    base = Path(root).resolve()
    target = base.joinpath(*parts).resolve()
    if target != base and base not in target.parents:
        raise ValidationError(what, "/".join(parts), f"path escapes the target directory {base}")
    return target


def empty_dir(path: Path, keep: str | None = None) -> None:
    """Remove everything inside ``path`` but the entry named ``keep`` (links themselves, never what they point to)."""
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.name == keep:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)


def made_by_framework(path: Path) -> bool:
    """True if ``path`` holds the marker ``user_dir`` leaves in the folders it creates."""
    return (path / MARKER).is_file() and not (path / MARKER).is_symlink()


def _mark(path: Path) -> None:
    (path / MARKER).write_text(MARKER_TEXT)


def user_dir(path: str | Path, overwrite: bool, subfolder: str) -> Path:
    """A directory to fill at the caller-named ``path``; never deletes a file the framework did not write.

    Without ``overwrite`` it is ``path`` itself (created if missing) and nothing is removed.
    With ``overwrite``:

    - ``path`` is missing or empty: it is created (or adopted) and recorded as the framework's.
    - ``path`` is one the framework created: emptied, then used.
    - ``path`` holds other files (a project folder, ``.``): left alone; the files go to
      ``path/<subfolder>`` under the same rules, or a fresh ``path/<subfolder>-XXXX``.

    Returns the directory to use (resolved).
    """
    target = Path(path).expanduser().resolve()
    if target.exists() and not target.is_dir():
        raise ValidationError("local_path", str(path), "exists and is not a directory")
    if not overwrite:
        target.mkdir(parents=True, exist_ok=True)
        return target
    for candidate in (target, target / subfolder):
        if candidate.exists() and not candidate.is_dir():
            continue
        candidate.mkdir(parents=True, exist_ok=True)
        if made_by_framework(candidate):
            empty_dir(candidate, keep=MARKER)
            return candidate
        if not any(candidate.iterdir()):
            _mark(candidate)
            return candidate
        log.warning("%s holds files the framework did not write: leaving them alone, not overwriting", candidate)
    fresh = Path(tempfile.mkdtemp(prefix=f"{subfolder}-", dir=target))
    _mark(fresh)
    return fresh
