"""Building the project image offline: a wheelhouse built on the host, a base image, the Dockerfile.

The build itself needs no network (``--network none``): every dependency comes from the
wheelhouse that pip builds on the host, as air-gapped clusters need. The base image is a
build argument; where the default cannot be pulled, a Debian base with Python is made from
Debian packages with ``mmdebstrap`` (or ``debootstrap``) and imported.

    python -m pipelines.image [--tag model-adapter:dev] [--base IMAGE] [--extras examples] [--engine docker|podman]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .engine import Engine, EngineError, find_engine

DEFAULT_TAG = "model-adapter:dev"
DEFAULT_BASE = "python:3.11-slim-bookworm"
DEBIAN_BASE = "model-adapter-base:bookworm"
DEBIAN_PACKAGES = ("python3", "python3-pip", "python3-venv", "passwd", "ca-certificates")
WHEELHOUSE = Path("build") / "wheelhouse"
PROJECT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class BuiltImage:
    """What ``build_image`` made."""

    ref: str
    base: str
    size_bytes: int
    seconds: float


def build_wheelhouse(project: Path = PROJECT, extras: str = "examples", dest: Path | None = None) -> Path:
    """Wheels of the project and every dependency (with ``extras``) in ``project/build/wheelhouse``, built by the host's pip."""
    dest = dest or project / WHEELHOUSE
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    spec = f".[{extras}]" if extras else "."
    cmd = [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--wheel-dir", str(dest), spec]
    proc = subprocess.run(cmd, cwd=project, capture_output=True, text=True)
    if proc.returncode != 0:
        raise EngineError(f"pip wheel {spec} failed: {proc.stderr.strip()[-2000:]}")
    return dest


def build_debian_base(engine: Engine, tag: str = DEBIAN_BASE, suite: str = "bookworm") -> str:
    """A minimal Debian ``suite`` image with Python 3 and pip, from Debian packages; returns its reference."""
    tool = shutil.which("mmdebstrap")
    if tool is None:
        raise EngineError("building a Debian base image needs mmdebstrap (apt-get install mmdebstrap); or pass --base IMAGE")
    with tempfile.TemporaryDirectory(prefix="model-adapter-base-") as tmp:
        tar = Path(tmp) / "base.tar"
        cmd = [tool, "--quiet", "--variant=minbase", f"--include={','.join(DEBIAN_PACKAGES)}", suite, str(tar)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise EngineError(f"mmdebstrap {suite} failed: {proc.stderr.strip()[-2000:]}")
        engine.run("import", "--change", "CMD [\"python3\"]", str(tar), engine.image_ref(tag))
    return engine.image_ref(tag)


def ensure_base(engine: Engine, base: str = DEFAULT_BASE) -> str:
    """``base`` if it is present or can be pulled; for the default base, else a Debian-made one."""
    if engine.image_exists(base):
        return engine.image_ref(base)
    pulled = engine.run("pull", base, check=False, timeout=300)
    if pulled.returncode == 0:
        return engine.image_ref(base)
    if base != DEFAULT_BASE:
        raise EngineError(f"base image {base!r} is not present and cannot be pulled: {(pulled.stderr or '').strip()[-300:]}")
    if engine.image_exists(DEBIAN_BASE):
        return engine.image_ref(DEBIAN_BASE)
    print(f">> {base} cannot be pulled; building {DEBIAN_BASE} from Debian packages (mmdebstrap)", file=sys.stderr)
    return build_debian_base(engine)


def build_image(
    engine: Engine | None = None,
    tag: str = DEFAULT_TAG,
    base: str = DEFAULT_BASE,
    extras: str = "examples",
    project: Path = PROJECT,
    wheelhouse: bool = True,
) -> BuiltImage:
    """Build the project image ``tag`` from ``project``'s Dockerfile with no network in the build."""
    engine = engine or find_engine()
    start = time.monotonic()
    if wheelhouse:
        build_wheelhouse(project, extras)
    base_ref = ensure_base(engine, base)
    args = ["build", "--build-arg", f"BASE_IMAGE={base_ref}", "--build-arg", f"EXTRAS={extras}", "-t", engine.image_ref(tag)]
    # No network needed (pip --no-index); podman's chroot isolation (no nested namespaces) only allows the host's.
    args += ["--isolation", "chroot", "--network", "host"] if engine.name == "podman" else ["--network", "none"]
    engine.run(*args, str(project), capture=False)
    return BuiltImage(ref=engine.image_ref(tag), base=base_ref, size_bytes=engine.image_size(tag), seconds=time.monotonic() - start)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipelines.image", description=__doc__.split("\n\n")[0])
    p.add_argument("--tag", default=DEFAULT_TAG, help=f"image name (default {DEFAULT_TAG})")
    p.add_argument("--base", default=DEFAULT_BASE, help=f"base image with Python 3.11 and pip (default {DEFAULT_BASE}; built from Debian packages when it cannot be pulled)")
    p.add_argument("--extras", default="examples", help="project extras to install (default examples; '' for none)")
    p.add_argument("--engine", choices=("docker", "podman"), help="container engine (default: docker if it answers, else podman)")
    p.add_argument("--base-only", action="store_true", help=f"only build the Debian base image {DEBIAN_BASE}")
    args = p.parse_args(argv)
    try:
        engine = find_engine(args.engine)
        if args.base_only:
            print(build_debian_base(engine))
            return 0
        built = build_image(engine, args.tag, args.base, args.extras)
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"built {built.ref} with {engine.name} FROM {built.base}: {built.size_bytes / 1e6:.0f} MB in {built.seconds:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
