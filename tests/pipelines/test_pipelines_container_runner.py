"""``pipeline run --local --runner docker``: the podman settings of ``make image``, and a store the containers can reach.

The containers themselves run in tests/containers; these check the decisions made before any starts.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from adapter_base.cli.main import main
from adapter_base.errors import ValidationError
from pipelines.engine import PODMAN_CONF, Engine, engine_environment
from pipelines.kfp.local import run_local
from pipelines.kfp.runners import check_store_for_containers
from pipelines_support import predict_arguments

REPO = Path(__file__).resolve().parents[2]


def test_podman_gets_the_settings_make_image_uses_unless_the_user_set_their_own():
    make_default = re.search(r"^CONTAINERS_CONF \?= \$\(CURDIR\)/(\S+)$", (REPO / "mk" / "image.mk").read_text(), re.M).group(1)
    assert PODMAN_CONF == REPO / make_default and PODMAN_CONF.is_file()
    podman, docker = Engine("podman", "podman"), Engine("docker", "docker")
    assert engine_environment(podman, {"PATH": "/bin"}) == {"PATH": "/bin", "CONTAINERS_CONF": str(PODMAN_CONF)}
    assert engine_environment(podman, {"CONTAINERS_CONF": "/etc/mine.conf"})["CONTAINERS_CONF"] == "/etc/mine.conf"
    assert engine_environment(podman, {"CONTAINERS_CONF": ""})["CONTAINERS_CONF"] == "", "`make image CONTAINERS_CONF=` keeps podman's own"
    assert "CONTAINERS_CONF" not in engine_environment(docker, {})


def test_a_local_store_is_refused_before_anything_runs_naming_s3(local_store_uri, tmp_path, capsys):
    root = tmp_path / "kfp-root"
    with pytest.raises(ValidationError, match=r"cannot see the local store .*: use an S3 store \(--store s3://bucket/prefix.*--runner subprocess"):
        run_local("predict", predict_arguments(local_store_uri), pipeline_root=root, runner="docker")
    assert not root.exists(), "nothing ran"

    code = main(["pipeline", "run", "predict", "--local", "--runner", "docker", "--model", "m", "--dataset", "d", "--pipeline-root", str(root),
                 "--adapter", "examples.digits.adapter:DigitsAdapter"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "cannot see the default local store" in err and "s3://" in err
    assert not root.exists()


def test_an_s3_store_from_the_option_or_the_environment_passes():
    assert check_store_for_containers("s3://bucket/prefix", {}) == "s3://bucket/prefix"
    assert check_store_for_containers("", {"MODEL_ADAPTER_STORE": "s3://bucket/p"}) == "s3://bucket/p"
    with pytest.raises(ValidationError, match="cannot see the local store file:///data/store"):
        check_store_for_containers("", {"MODEL_ADAPTER_STORE": "file:///data/store"})
