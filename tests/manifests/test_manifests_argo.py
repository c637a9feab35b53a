"""manifests/overlays/argo: the WorkflowTemplates and CronWorkflow are what the code renders now, the images are
rewritten by the overlay, the workflow pods' account has exactly the RBAC Argo's executor needs, and every
reference (template, service account, store ConfigMap) resolves in the rendered overlay."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from adapter_base.cli.main import main
from manifests_support import ARGO_GENERATED, ARGO_OVERLAY, MANIFESTS, find, one, render

REL = "overlays/argo"
REPO = MANIFESTS.parent


def _make_commands() -> list[list[str]]:
    """The CLI command lines of `make argo-manifests` (mk/argo.mk), with the make variables filled in."""
    text = (REPO / "mk" / "argo.mk").read_text().replace("\\\n", " ")
    values = dict(re.findall(r"^(ARGO_\w+) := (\S+)$", text, re.M))
    commands = []
    for line in re.findall(r"adapter_base\.cli\.main (argo .+)$", text, re.M):
        line = re.sub(r"\$\((ARGO_\w+)\)", lambda m: values[m.group(1)], line)
        commands.append(line)
    return commands


def test_the_generated_files_are_what_the_code_renders_now(tmp_path, monkeypatch, capsys):
    import shlex

    monkeypatch.delenv("MODEL_ADAPTER_IMAGE", raising=False)
    commands = _make_commands()
    assert len(commands) == len(ARGO_GENERATED)
    for command in commands:
        argv = shlex.split(command)
        for flag in ("--render", "-o"):
            if flag in argv:
                target = Path(argv[argv.index(flag) + 1])
                argv[argv.index(flag) + 1] = str(tmp_path / target.name)
        assert main(argv) == 0, command
    capsys.readouterr()
    for path in ARGO_GENERATED:
        fresh = list(yaml.safe_load_all((tmp_path / path.name).read_text()))
        assert list(yaml.safe_load_all(path.read_text())) == fresh, f"{path.relative_to(REPO)} is stale: run `make argo-manifests`"


def test_every_step_runs_the_registry_image_as_the_workflow_account():
    objs = render(REL)
    templates = find(objs, "WorkflowTemplate")
    assert {t["metadata"]["name"] for t in templates} == {"model-adapter-train", "model-adapter-predict"}
    (account,) = find(objs, "ServiceAccount")
    for t in templates:
        assert t["spec"]["serviceAccountName"] == account["metadata"]["name"]
        for step in t["spec"]["templates"]:
            if "container" in step:
                assert step["container"]["image"] == "registry.example.com/model-adapter:0.1.0", step["name"]
                refs = [e["configMapRef"]["name"] for e in step["container"]["envFrom"] if "configMapRef" in e]
                for ref in refs:
                    one(objs, "ConfigMap", ref)  # the store settings are in the same namespace


def test_the_account_may_only_report_task_results():
    objs = render(REL)
    (role,) = find(objs, "Role")
    assert role["rules"] == [{"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]}]
    (binding,) = find(objs, "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "model-adapter-workflow", "namespace": "model-adapter"}]
    assert not find(objs, "ClusterRole") and not find(objs, "ClusterRoleBinding") and not find(objs, "Secret")


def test_the_cron_workflow_runs_a_template_of_the_overlay_with_its_declared_parameters():
    objs = render(REL)
    cron = one(objs, "CronWorkflow", "model-adapter-train-nightly")
    spec = cron["spec"]
    assert spec["concurrencyPolicy"] == "Forbid" and spec["schedules"] and spec["timezone"]
    template = one(objs, "WorkflowTemplate", spec["workflowSpec"]["workflowTemplateRef"]["name"])
    declared = {p["name"] for p in template["spec"]["arguments"]["parameters"]}
    required = {p["name"] for p in template["spec"]["arguments"]["parameters"] if "value" not in p}
    given = {p["name"] for p in spec["workflowSpec"]["arguments"]["parameters"]}
    assert required <= given <= declared
    assert ARGO_OVERLAY.joinpath("kustomization.yaml").is_file()
