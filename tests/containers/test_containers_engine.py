"""Choosing the container engine: the one that answers, not the command that exists (no container runs here)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipelines.engine import Engine, EngineError, find_engine
from pipelines.kfp.runners import container_env


def _fake(bin_dir: Path, name: str, script: str) -> None:
    (bin_dir / name).write_text(f"#!/bin/sh\n{script}\n")
    (bin_dir / name).chmod(0o755)


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "bin"
    d.mkdir()
    monkeypatch.setenv("PATH", str(d))
    monkeypatch.delenv("MODEL_ADAPTER_CONTAINER_ENGINE", raising=False)
    return d


def test_a_docker_command_without_an_engine_falls_back_to_podman(bin_dir: Path) -> None:
    _fake(bin_dir, "docker", "exit 1")  # the client is installed, no engine answers `docker info`
    _fake(bin_dir, "podman", "exit 0")
    assert find_engine() == Engine("podman", "podman")


def test_docker_is_chosen_when_its_engine_answers(bin_dir: Path) -> None:
    _fake(bin_dir, "docker", "exit 0")
    _fake(bin_dir, "podman", "exit 0")
    assert find_engine().name == "docker"


def test_no_engine_is_one_clear_error(bin_dir: Path) -> None:
    _fake(bin_dir, "docker", "exit 1")
    with pytest.raises(EngineError, match=r"no container engine answers: `docker info` fails .*install podman"):
        find_engine()
    with pytest.raises(EngineError, match="'podman' is not installed"):
        find_engine("podman")
    with pytest.raises(EngineError, match="unknown container engine 'rkt'"):
        find_engine("rkt")


def test_podman_names_local_images_under_localhost() -> None:
    podman, docker = Engine("podman", "podman"), Engine("docker", "docker")
    assert podman.image_ref("model-adapter:dev") == "localhost/model-adapter:dev"
    assert podman.image_ref("me/adapters") == "localhost/me/adapters:latest"
    assert podman.image_ref("registry.example.com:5000/me/a:1") == "registry.example.com:5000/me/a:1"
    assert podman.image_ref("localhost/model-adapter:dev") == "localhost/model-adapter:dev"
    assert docker.image_ref("model-adapter:dev") == "model-adapter:dev"


def test_containers_get_the_store_settings_and_nothing_else() -> None:
    env = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_ENDPOINT_URL": "http://127.0.0.1:1", "HOME": "/root", "PATH": os.defpath, "AWS_REGION": ""}
    assert container_env(env) == {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_ENDPOINT_URL": "http://127.0.0.1:1"}
