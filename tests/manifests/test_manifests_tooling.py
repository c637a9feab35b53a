"""mk/kind.mk, mk/image.mk, the kind workflow and the Dockerfile agree with each other and with the manifests."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from manifests_support import K8S_VERSION, REPO, kind_cluster_config, one, render

KIND_MK = REPO / "mk" / "kind.mk"
IMAGE_MK = REPO / "mk" / "image.mk"
WORKFLOW = REPO / ".github" / "workflows" / "kind.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
MAKE = shutil.which("make")
needs_make = pytest.mark.skipif(MAKE is None, reason="make is not installed")


def make_vars() -> dict[str, str]:
    out = {}
    for line in KIND_MK.read_text().splitlines():
        m = re.match(r"^([A-Z_]+)\s*(?:\?=|:=|=)\s*(.*?)\s*$", line)
        if m:
            out.setdefault(m.group(1), m.group(2))
    return out


def make_targets(makefile: Path = KIND_MK) -> dict[str, str]:
    """Public target -> its `## help` text ("" when it has none)."""
    out = {}
    for line in makefile.read_text().splitlines():
        m = re.match(r"^([a-zA-Z][a-zA-Z0-9_-]*):(?!=)(.*)$", line)
        if m:
            help_text = m.group(2).split("## ", 1)
            out[m.group(1)] = help_text[1].strip() if len(help_text) == 2 else ""
    return out


@pytest.mark.parametrize("makefile, expected", [(KIND_MK, {"kind-up", "kind-load", "kind-test", "kind-down"}), (IMAGE_MK, {"image", "base-image", "container-deps"})])
def test_make_targets_exist_and_carry_help(makefile, expected):
    targets = make_targets(makefile)
    assert expected <= set(targets)
    assert not [t for t, text in targets.items() if not text], "every public target needs a `## description`"
    assert "$(" not in "".join(targets.values()), "`make help` greps the text: no make variables in it"


def test_kind_test_runs_the_kind_suite():
    recipe = KIND_MK.read_text().split("\nkind-test:", 1)[1].split("\n\n", 1)[0]
    assert "$(VENV)/bin/pytest tests/kind -m kind" in recipe
    # Under `make kind-test` a cluster is expected: the suite fails rather than skips without one.
    assert "MODEL_ADAPTER_KIND_REQUIRED=1" in recipe


def test_versions_are_pinned_and_consistent():
    v = make_vars()
    assert re.fullmatch(r"\d+\.\d+\.\d+", v["KFP_VERSION"]), v["KFP_VERSION"]
    assert re.fullmatch(r"v\d+\.\d+\.\d+", v["KIND_VERSION"])
    node = re.fullmatch(r"kindest/node:v(\d+\.\d+)\.\d+@sha256:[0-9a-f]{64}", v["KIND_NODE_IMAGE"])
    assert node, "pin the kind node image by digest (kind's release notes list them)"
    # The offline checks validate against the Kubernetes minor the kind cluster runs.
    assert node.group(1) == ".".join(K8S_VERSION.split(".")[:2])
    assert v["KUBECTL_VERSION"].lstrip("v").rsplit(".", 1)[0] == node.group(1)
    assert v["KIND_CLUSTER"] == kind_cluster_config()["name"]
    assert v["KIND_CONFIG"] == "manifests/kind/cluster.yaml" and v["KIND_OVERLAY"] == "manifests/overlays/kind"
    # The image kind-load puts in the nodes is the one the kind overlay runs.
    image = one(render("overlays/kind"), "CronJob", "model-adapter-train")["spec"]["jobTemplate"]["spec"]
    assert image["template"]["spec"]["containers"][0]["image"] == v["KIND_IMAGE"]
    # No remote bases in the kustomizations (they cannot be fetched offline): KFP is installed by the Makefile.
    assert f"?ref=$(KFP_VERSION)" in KIND_MK.read_text()


def test_workflow_installs_the_pinned_tools_and_runs_the_suite():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    v = make_vars()
    assert workflow["env"]["KIND_VERSION"] == v["KIND_VERSION"]
    assert workflow["env"]["KUBECTL_VERSION"] == v["KUBECTL_VERSION"]
    (job,) = workflow["jobs"].values()
    assert job["runs-on"] == "ubuntu-latest"
    runs = [step.get("run", "") for step in job["steps"]]
    assert [r.strip() for r in runs if r.strip().startswith("make ") and "kind-down" not in r] == [
        "make venv VENV_EXTRAS=dev", "make kind-up", "make kind-test"]
    assert any("kind-down" in r for r in runs)


def _run_make(target: str, tmp_path: Path, docker: str | None, with_kind: bool = False) -> subprocess.CompletedProcess:
    """Run a kind.mk target with a PATH holding only fakes (so nothing real can start)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if docker is not None:
        (bin_dir / "docker").write_text(f"#!/bin/sh\n{docker}\n")
        (bin_dir / "docker").chmod(0o755)
    if with_kind:  # a kind that knows no clusters, and a kubectl
        for tool in ("kind", "kubectl"):
            (bin_dir / tool).write_text("#!/bin/sh\nexit 0\n")
            (bin_dir / tool).chmod(0o755)
        grep = shutil.which("grep")
        if grep and not (bin_dir / "grep").exists():
            (bin_dir / "grep").symlink_to(grep)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEFILES")}
    env["PATH"] = str(bin_dir)
    return subprocess.run(
        [MAKE, "--no-print-directory", "-f", str(KIND_MK), target, "VENV=.venv", f"KUBECTL={bin_dir}/kubectl"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=30,
    )


@needs_make
@pytest.mark.parametrize("target", ["kind-up", "kind-test", "kind-down"])
def test_targets_fail_clearly_without_docker(target, tmp_path):
    missing = _run_make(target, tmp_path, docker=None)
    assert missing.returncode != 0 and "not found" in missing.stderr and "Docker" in missing.stderr, missing.stderr
    no_engine = _run_make(target, tmp_path, docker="exit 1")
    assert no_engine.returncode != 0 and "engine is not reachable" in no_engine.stderr, no_engine.stderr


@needs_make
@pytest.mark.parametrize("target", ["kind-up", "kind-test", "kind-down"])
def test_targets_fail_clearly_without_kind(target, tmp_path):
    proc = _run_make(target, tmp_path, docker="exit 0")
    assert proc.returncode != 0 and "'kind' not found" in proc.stderr and "kind.sigs.k8s.io" in proc.stderr, proc.stderr


@needs_make
def test_kind_test_refuses_without_a_cluster(tmp_path):
    proc = _run_make("kind-test", tmp_path, docker="exit 0", with_kind=True)
    assert proc.returncode != 0 and "no kind cluster 'model-adapter'" in proc.stderr, proc.stderr
    assert "make kind-up" in proc.stderr


def test_dockerfile_follows_the_project_conventions():
    text = DOCKERFILE.read_text()
    instructions = [line.split(None, 1) for line in text.splitlines() if line.strip() and not line.startswith("#")]
    keywords = [i[0].upper() for i in instructions]
    assert "ENTRYPOINT" not in keywords
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim", text, re.M) and re.search(r"^FROM \$\{BASE_IMAGE\}$", text, re.M)
    # Offline: every wheel from the host-built wheelhouse, nothing from an index, no pip cache in the image.
    assert "COPY build/wheelhouse /wheels" in text and "pip install --no-index --find-links /wheels" in text
    assert "PIP_NO_CACHE_DIR=1" in text and "rm -rf /wheels" in text
    assert re.search(r"useradd[^\n]*--uid 1000[^\n]*\badapter\b", text)
    assert re.search(r"^USER (1000|adapter)", text, re.M)
    assert re.search(r"^WORKDIR /home/adapter$", text, re.M)
    assert "MODEL_ADAPTER_HOME=/home/adapter/.model-adapter" in text
    assert re.search(r'^CMD \["model-adapter", "--help"\]$', text, re.M)
    ignored = DOCKERIGNORE.read_text().split()
    assert {".venv", ".git", "build/*", "!build/wheelhouse"} <= set(ignored)


# --------------------------------------------------------------------------- kind job: disk, timeouts, logs
PYPROJECT = REPO / "pyproject.toml"


def _kind_job() -> dict:
    (job,) = yaml.safe_load(WORKFLOW.read_text())["jobs"].values()
    return job


def _step(job: dict, run: str) -> tuple[int, dict]:
    (found,) = [(i, s) for i, s in enumerate(job["steps"]) if s.get("run", "").strip() == run]
    return found


def test_kind_job_frees_disk_and_installs_no_torch_before_the_cluster():
    job = _kind_job()
    runs = [s.get("run", "") for s in job["steps"]]
    free = next(i for i, r in enumerate(runs) if "rm -rf" in r and "docker system prune" in r)
    venv, _ = _step(job, "make venv VENV_EXTRAS=dev")
    up, _ = _step(job, "make kind-up")
    assert free < venv < up
    assert not any("torch" in r for r in runs)


@needs_make
def test_venv_extras_dev_installs_no_torch(tmp_path):
    """The kind job's `make venv VENV_EXTRAS=dev` asks pip for the dev extra only; the default keeps torch."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "VENV_EXTRAS")}

    def pip_line(*args: str) -> str:
        proc = subprocess.run([MAKE, "-n", "venv", f"VENV={tmp_path / 'venv'}", *args], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        (line,) = [ln for ln in proc.stdout.splitlines() if "pip install" in ln and " -e " in ln]
        return line

    assert pip_line("VENV_EXTRAS=dev").endswith("-e '.[dev]'")
    assert "torch" in pip_line()


def test_kind_test_step_has_its_own_timeout_and_logs_survive_timeouts_and_cancels():
    job = _kind_job()
    steps = {s.get("run", "").strip(): s for s in job["steps"]}
    timed = [steps[r].get("timeout-minutes") for r in ("make venv VENV_EXTRAS=dev", "make kind-up", "make kind-test")]
    assert all(isinstance(m, int) and m > 0 for m in timed), timed
    # The steps' own timeouts end a hang before the job's does, leaving time for the log steps.
    assert sum(timed) + 10 <= job["timeout-minutes"], (timed, job["timeout-minutes"])
    log_steps = [s for s in job["steps"] if "kind export logs" in s.get("run", "") or "upload-artifact" in s.get("uses", "")]
    assert len(log_steps) == 2
    for step in log_steps:
        condition = step.get("if", "")
        assert "failure()" in condition and "cancelled()" in condition, f"{step.get('name')}: if: {condition!r}"


def test_kfp_backend_and_sdk_share_their_minor_version():
    backend = make_vars()["KFP_VERSION"]
    sdk = re.search(r'"kfp==(\d+\.\d+\.\d+)"', PYPROJECT.read_text())
    assert sdk, "pyproject.toml pins the kfp SDK exactly"
    assert backend.rsplit(".", 1)[0] == sdk.group(1).rsplit(".", 1)[0], (backend, sdk.group(1))
    # The comment above KFP_VERSION says which tag and why: keep it true.
    assert f"({backend} is the tag of commit" in KIND_MK.read_text()


def _wait_bootstrap(tmp_path: Path, conditions: str, wait_s: int = 20) -> tuple[subprocess.CompletedProcess, float]:
    """`make _wait-bootstrap` against a kubectl that reports the Job's True conditions as ``conditions``."""
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        f'  *"get job/model-adapter-bootstrap"*) printf "%s" "{conditions}" ;;\n'
        '  *"logs -l job-name=model-adapter-bootstrap"*) echo "[pod/model-adapter-bootstrap-x] bootstrap: boom" ;;\n'
        '  *"get pods"*) echo "model-adapter-bootstrap-x 0/1 Error" ;;\n'
        "esac\n"
    )
    kubectl.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEFILES")}
    started = time.monotonic()
    proc = subprocess.run(
        [MAKE, "--no-print-directory", "-f", str(KIND_MK), "_wait-bootstrap", f"KUBECTL={kubectl}", f"BOOTSTRAP_WAIT={wait_s}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    return proc, time.monotonic() - started


@needs_make
def test_bootstrap_wait_fails_fast_with_the_logs_when_the_job_fails(tmp_path):
    proc, took = _wait_bootstrap(tmp_path, "FailureTarget Failed ", wait_s=300)
    assert proc.returncode != 0 and took < 30, (proc.returncode, took)
    assert "bootstrap Job failed" in proc.stderr and "bootstrap: boom" in proc.stderr, proc.stderr


@needs_make
def test_bootstrap_wait_returns_when_the_job_completes(tmp_path):
    proc, took = _wait_bootstrap(tmp_path, "SuccessCriteriaMet Complete ", wait_s=300)
    assert proc.returncode == 0 and took < 30, proc.stderr
    assert "boom" not in proc.stderr


@needs_make
def test_bootstrap_wait_gives_up_at_its_deadline_with_the_logs(tmp_path):
    proc, took = _wait_bootstrap(tmp_path, "", wait_s=3)
    assert proc.returncode != 0 and took < 30
    assert "neither completed nor failed within 3s" in proc.stderr and "bootstrap: boom" in proc.stderr, proc.stderr
