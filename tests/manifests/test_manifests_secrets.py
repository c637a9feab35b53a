"""No Secret, generator input or env var in the manifests carries a real credential."""

from __future__ import annotations

import base64
import re

import pytest

from manifests_support import (
    KFP_NAMESPACE,
    MANIFESTS,
    OUR_NAMESPACE,
    OVERLAYS,
    STORE_SECRET,
    containers,
    find,
    ident,
    kustomization_dirs,
    pod_specs,
    render,
)

PLACEHOLDERS = {"REPLACE_ME"}
# Credentials of the throwaway SeaweedFS inside the kind cluster.
DEV_VALUES = {"AWS_ACCESS_KEY_ID": "store-dev", "AWS_SECRET_ACCESS_KEY": "store-dev-secret"}
ALLOWED = PLACEHOLDERS | set(DEV_VALUES.values())
SECRET_KEYS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}

AWS_KEY_ID = re.compile(r"(?<![A-Z0-9])(AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)[A-Z0-9]{16}(?![A-Z0-9])")
# The shape of an AWS secret access key: 40 base64 characters, mixed case.
AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+]*[A-Z])(?=[A-Za-z0-9/+]*[a-z])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
CREDENTIAL_NAME = re.compile(r"(SECRET|PASSWORD|PASSWD|ACCESS_KEY|TOKEN|CREDENTIAL)", re.IGNORECASE)
# Values that cannot be credentials (automountServiceAccountToken: false, ...).
NOT_A_SECRET = re.compile(r"|true|false|null|~|[0-9]+|\|-?|>-?", re.IGNORECASE)
# KEY: value / KEY=value lines of YAML and env files.
ASSIGNMENT = re.compile(r"^\s*-?\s*([A-Za-z_][A-Za-z0-9_]*)\s*[:=]\s*['\"]?([^'\"\s#]*)")


def secret_values(secret: dict) -> dict[str, str]:
    values = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    values.update(secret.get("stringData") or {})
    return values


def looks_real(value: str) -> bool:
    return bool(AWS_KEY_ID.search(value) or AWS_SECRET.search(value))


def test_the_detectors_catch_real_looking_credentials():
    # AWS's documented example pair: what a leaked credential looks like.
    assert looks_real("AKIAIOSFODNN7EXAMPLE")
    assert looks_real("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    assert not any(map(looks_real, ALLOWED))


@pytest.mark.parametrize("rel", kustomization_dirs())
def test_every_rendered_secret_holds_only_placeholders_or_dev_values(rel):
    for secret in find(render(rel), "Secret"):
        where = "/".join(ident(secret))
        values = secret_values(secret)
        assert set(values) <= SECRET_KEYS, f"{where} has unexpected keys {sorted(set(values) - SECRET_KEYS)}"
        for key, value in values.items():
            assert not looks_real(value), f"{where} {key} looks like a real credential"
            assert value in ALLOWED, f"{where} {key} is not one of the placeholder/dev values {sorted(ALLOWED)}"


def test_base_secret_is_a_template_of_placeholders():
    (secret,) = find(render("base"), "Secret", STORE_SECRET, OUR_NAMESPACE)
    assert secret_values(secret) == dict.fromkeys(SECRET_KEYS, "REPLACE_ME")


def test_kind_overlay_generates_its_dev_credentials_in_both_namespaces():
    objs = render("overlays/kind")
    for namespace in (OUR_NAMESPACE, KFP_NAMESPACE):
        (secret,) = find(objs, "Secret", STORE_SECRET, namespace)
        assert secret["metadata"]["name"] == STORE_SECRET, "pods reference the Secret by name: no hash suffix"
        assert secret_values(secret) == DEV_VALUES


def test_gpu_overlay_never_overwrites_the_real_secret():
    """The real credentials are created out of band; applying the overlay must not replace them."""
    assert find(render("overlays/gpu"), "Secret") == []


def test_no_source_file_under_manifests_carries_a_credential():
    offenders = []
    for path in sorted(p for p in MANIFESTS.rglob("*") if p.is_file()):
        text = path.read_text(errors="replace")
        rel = path.relative_to(MANIFESTS)
        if looks_real(text):
            offenders.append(f"{rel}: real-looking AWS credential")
        if path.suffix not in (".yaml", ".yml", ".env"):
            continue
        for lineno, line in enumerate(text.splitlines(), 1):
            match = ASSIGNMENT.match(line)
            if match and CREDENTIAL_NAME.search(match.group(1)) and not NOT_A_SECRET.fullmatch(match.group(2)):
                if match.group(2) not in ALLOWED:
                    offenders.append(f"{rel}:{lineno}: {match.group(1)} = {match.group(2)!r}")
    assert not offenders, "credentials in manifests/:\n" + "\n".join(offenders)


@pytest.mark.parametrize("rel", sorted(OVERLAYS))
def test_credentials_reach_pods_only_from_secrets(rel):
    objs = render(rel)
    for cm in find(objs, "ConfigMap"):
        leaked = [k for k in (cm.get("data") or {}) if CREDENTIAL_NAME.search(k)]
        assert not leaked, f"ConfigMap {cm['metadata']['name']} holds credential keys {leaked}"
    for owner, spec in pod_specs(objs):
        for c in containers(spec):
            for var in c.get("env", []):
                if CREDENTIAL_NAME.search(var["name"]):
                    assert "value" not in var and "secretKeyRef" in var.get("valueFrom", {}), (
                        f"{'/'.join(ident(owner))} container {c['name']} sets {var['name']} inline"
                    )
