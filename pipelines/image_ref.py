"""Checking a container image reference before it is written into a pipeline or workflow.

The grammar is the one container engines and registries parse (``distribution/reference``)::

    reference  := name [":" tag] ["@" digest]
    name       := [domain "/"] path-component ["/" path-component]*
    domain     := host [":" port]      host: DNS labels (any case), or an IPv6 address in brackets
    path-component := [a-z0-9]+ ([_.] | "__" | "-"+) [a-z0-9]+ ...   (lower case only)
    tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest     := algorithm ":" hex (at least 32 hex digits), e.g. sha256:<64 hex>

The first ``/``-separated part is a registry host when it holds a ``.`` or a ``:``, is
``localhost``, or has upper case (as ``docker pull`` decides); every other part is the repository.
"""

from __future__ import annotations

import os
import re

from adapter_base.errors import ValidationError

#: The environment variable the steps' image defaults to (``components._factory.IMAGE_ENV``; kept
#: here too so that checking it needs no kfp import).
IMAGE_ENV = "MODEL_ADAPTER_IMAGE"

_HOST_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"(?:{_HOST_LABEL}(?:\.{_HOST_LABEL})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?")
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[_.]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")
MAX_NAME_LENGTH = 255


def _problem(ref: str) -> str | None:
    """Why ``ref`` is not an image reference, or None when it is one."""
    if not ref:
        return "is empty"
    bad = sorted({c for c in ref if c.isspace() or c in "\"'`\\$" or not c.isprintable()})
    if bad:
        return f"holds {', '.join(repr(c) for c in bad)}: no spaces, quotes or control characters"
    name, _, digest = ref.partition("@")
    if digest:
        if not _DIGEST.fullmatch(digest):
            return f"digest {digest!r} is not ALGORITHM:HEX, e.g. sha256: and 64 hex digits"
        if digest.startswith("sha256:") and not _SHA256.fullmatch(digest):
            return f"digest {digest!r}: sha256 takes 64 lower-case hex digits"
    # a tag is after the last ':' that follows the last '/' (a ':' before it is a registry port)
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = ""
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG.fullmatch(tag):
            return f"tag {tag!r} is not [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}"
    if not name:
        return "has no repository name"
    if len(name) > MAX_NAME_LENGTH:
        return f"name is {len(name)} characters long, more than {MAX_NAME_LENGTH}"
    parts = name.split("/")
    first = parts[0]
    if len(parts) > 1 and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if not _DOMAIN.fullmatch(first):
            return f"registry host {first!r} is not HOST[:PORT]"
        parts = parts[1:]
    for part in parts:
        if not _PATH_COMPONENT.fullmatch(part):
            hint = " (repository names are lower case)" if part.lower() != part else ""
            return f"repository part {part!r} is not lower-case letters and digits separated by '.', '_', '__' or '-'{hint}"
    return None


def check_image_reference(ref: str, option: str = "image") -> str:
    """``ref`` if it is a valid image reference; else a ValidationError naming ``option`` and the value."""
    problem = _problem(ref)
    if problem:
        raise ValidationError("pipeline", option, f"{ref!r} is not an image reference: it {problem}")
    return ref


def chosen_image(image: str | None, option: str = "--image") -> str | None:
    """The checked image of ``option``, else the checked ``$MODEL_ADAPTER_IMAGE``, else None (the default image)."""
    if image:
        return check_image_reference(image, option)
    from_env = os.environ.get(IMAGE_ENV)
    if from_env:
        check_image_reference(from_env, f"${IMAGE_ENV}")
    return None
