"""Every kustomization renders, and every object validates strictly against the pinned Kubernetes schemas."""

from __future__ import annotations

import copy
from collections import Counter

import kubernetes_validate
import pytest

from support.argo_schema import VERSIONS as ARGO_VERSIONS
from support.argo_schema import problems as argo_problems

from manifests_support import (
    K8S_VERSION,
    KFP_NAMESPACE,
    KIND_CLUSTER_CONFIG,
    OUR_NAMESPACE,
    OVERLAYS,
    ident,
    kustomization_dirs,
    one,
    render,
)

DIRS = kustomization_dirs()


def validate(obj: dict) -> str | None:
    """None if ``obj`` is valid, else why not (a missing schema is a failure too: besides core kinds we only use
    Argo Workflows' kinds, checked against Argo's own schema of every supported release)."""
    if str(obj.get("apiVersion", "")).startswith("argoproj.io/"):
        found = [f"{'/'.join(ident(obj))}: Argo {v}: {p}" for v in ARGO_VERSIONS for p in argo_problems(obj, v)]
        return "\n".join(found) or None
    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)
        return f"{'/'.join(ident(obj))}: {path or '<root>'}: {exc.message}"
    except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as exc:
        return f"{'/'.join(ident(obj))}: {exc.message}"
    return None


def test_the_base_the_overlays_and_the_kind_config_exist():
    missing = sorted(set(OVERLAYS) - set(DIRS))
    assert not missing, f"kustomizations missing under manifests/: {missing}"
    assert KIND_CLUSTER_CONFIG.is_file()


@pytest.mark.parametrize("rel", DIRS)
def test_kustomization_renders_and_validates_strictly(rel):
    objs = render(rel)
    assert objs, f"manifests/{rel} renders nothing"
    errors = [e for e in map(validate, objs) if e]
    assert not errors, f"manifests/{rel} does not validate against Kubernetes {K8S_VERSION}:\n" + "\n".join(errors)


@pytest.mark.parametrize("rel", DIRS)
def test_no_object_is_rendered_twice(rel):
    counts = Counter(ident(o) for o in render(rel))
    assert not [i for i, n in counts.items() if n > 1]


@pytest.mark.parametrize("rel", sorted(OVERLAYS))
def test_every_namespaced_object_lands_in_our_namespace_or_kfps(rel):
    for obj in render(rel):
        kind, namespace, name = ident(obj)
        if kind == "Namespace":
            assert name == OUR_NAMESPACE
            continue
        assert namespace in (OUR_NAMESPACE, KFP_NAMESPACE), f"{kind} {name} is in namespace {namespace!r}"


def test_strict_validation_catches_a_broken_object():
    """The schema check is not a rubber stamp: a typo'd field and a mistyped value are both rejected."""
    cronjob = one(render("base"), "CronJob", "model-adapter-train")
    assert validate(cronjob) is None
    typo = copy.deepcopy(cronjob)
    typo["spec"]["concurencyPolicy"] = typo["spec"].pop("concurrencyPolicy")
    assert validate(typo) and "concurencyPolicy" in validate(typo)
    mistyped = copy.deepcopy(cronjob)
    mistyped["spec"]["startingDeadlineSeconds"] = "600"
    assert validate(mistyped)
