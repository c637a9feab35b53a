"""Argo Workflows' own JSON schema (``api/jsonschema/schema.json``), to check every object the argo backend renders.

The files in ``argo_schema/`` are that schema of two releases (one per supported minor:
``v3.7.json.gz``, ``v4.0.json.gz``), cut to the definitions a WorkflowTemplate, a Workflow
and a CronWorkflow reach, byte-for-byte otherwise; ``argo_schema/SOURCES.json`` says
which tag and commit each came from and the upstream file's sha256. The tests need no network.

Refresh (from a clone of https://github.com/argoproj/argo-workflows, Apache-2.0)::

    python tests/support/argo_schema.py --git-dir ~/src/argo-workflows v3.7.18 v4.0.10

``strict_validator`` also refuses properties a definition does not list (Argo's schema
allows them; the cluster would drop them silently, e.g. the ``schedule`` Argo 4 removed).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

HERE = Path(__file__).resolve().parent / "argo_schema"
ROOTS = ("WorkflowTemplate", "Workflow", "CronWorkflow")
PREFIX = "io.argoproj.workflow.v1alpha1."
VERSIONS = ("v3.7", "v4.0")


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value.rsplit("/", 1)[-1]
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def extract(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with only the definitions the ``ROOTS`` reach, and a top-level ``oneOf`` of the roots."""
    defs = schema["definitions"]
    keep: set[str] = set()
    todo = [PREFIX + root for root in ROOTS]
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep.add(name)
        todo.extend(_refs(defs[name]))
    out = {k: v for k, v in schema.items() if k not in ("definitions", "oneOf")}
    out["oneOf"] = [{"$ref": f"#/definitions/{PREFIX}{root}"} for root in ROOTS]
    out["definitions"] = {k: defs[k] for k in sorted(keep)}
    return out


def load(version: str) -> dict[str, Any]:
    """The stored schema of ``version`` (``v3.7`` or ``v4.0``)."""
    with gzip.open(HERE / f"{version}.json.gz", "rt") as f:
        return json.load(f)


def _strict(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _strict(v) for k, v in node.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


def strict_validator(version: str, kind: str) -> Any:
    """A jsonschema validator of ``kind`` (``WorkflowTemplate``, ``CronWorkflow``, ...) that also refuses unknown properties."""
    from jsonschema import Draft202012Validator

    schema = _strict(load(version))
    schema = {**schema, "oneOf": None, "$ref": f"#/definitions/{PREFIX}{kind}"}
    del schema["oneOf"]
    return Draft202012Validator(schema)


def problems(doc: dict[str, Any], version: str) -> list[str]:
    """Every schema error of ``doc`` under ``version`` (strict), as ``path: message`` lines."""
    validator = strict_validator(version, doc["kind"])
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in validator.iter_errors(doc)]


def refresh(git_dir: Path, tags: list[str]) -> None:
    """Write ``argo_schema/<minor>.json.gz`` from each of ``tags`` of the argo-workflows clone at ``git_dir``."""
    sources_path = HERE / "SOURCES.json"
    sources = json.loads(sources_path.read_text()) if sources_path.exists() else {}
    HERE.mkdir(exist_ok=True)
    for tag in tags:
        raw = subprocess.run(["git", "-C", str(git_dir), "show", f"{tag}:api/jsonschema/schema.json"], check=True, capture_output=True).stdout
        commit = subprocess.run(["git", "-C", str(git_dir), "rev-parse", f"{tag}^{{}}"], check=True, capture_output=True, text=True).stdout.strip()
        minor = ".".join(tag.split(".")[:2])
        cut = extract(json.loads(raw))
        with gzip.GzipFile(HERE / f"{minor}.json.gz", "wb", mtime=0) as f:
            f.write(json.dumps(cut, indent=1, sort_keys=True).encode())
        sources[minor] = {
            "repository": "https://github.com/argoproj/argo-workflows",
            "license": "Apache-2.0",
            "path": "api/jsonschema/schema.json",
            "tag": tag,
            "commit": commit,
            "sha256": hashlib.sha256(raw).hexdigest(),
            "definitions": len(cut["definitions"]),
        }
    sources_path.write_text(json.dumps(sources, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Store Argo's JSON schema of the given release tags (cut to what our objects use).")
    parser.add_argument("--git-dir", type=Path, required=True, help="a clone of argoproj/argo-workflows with its tags")
    parser.add_argument("tags", nargs="+", help="release tags, e.g. v3.7.18 v4.0.10")
    ns = parser.parse_args()
    refresh(ns.git_dir, ns.tags)
    sys.exit(0)
