# The project image, built offline from a host-built wheelhouse (see pipelines/image.py).
# Included from the top-level Makefile, which defines VENV, PY and IMAGE.
#
#   make image                       Docker if an engine answers, else podman; prints the image size
#   make image BASE_IMAGE=REF        any Debian-like base with Python 3.11 and pip
#   make base-image                  a Debian bookworm base with Python from Debian packages (mmdebstrap)
#   make container-deps              apt-get the container tools (podman, runc, mmdebstrap, uidmap); root only

BASE_IMAGE ?= python:3.11-slim-bookworm
IMAGE_EXTRAS ?= examples
# podman settings for machines without systemd and with restricted rlimits (CI, this project's
# machines). `make image CONTAINERS_CONF=` keeps your own podman configuration.
CONTAINERS_CONF ?= $(CURDIR)/mk/podman/containers.conf
export CONTAINERS_CONF

.PHONY: image base-image container-deps

image: venv ## Build the project image (IMAGE, default model-adapter:dev) offline from a host-built wheelhouse, with Docker or podman
	@$(PY) -m pipelines.image --tag $(IMAGE) --base $(BASE_IMAGE) --extras '$(IMAGE_EXTRAS)'

base-image: venv ## Build a Debian bookworm base image with Python from Debian packages (for air-gapped builds)
	@$(PY) -m pipelines.image --base-only

container-deps: ## Install podman, runc, mmdebstrap and uidmap with apt-get (root; what the container tests need where no Docker runs)
	@command -v podman >/dev/null 2>&1 && command -v runc >/dev/null 2>&1 && command -v mmdebstrap >/dev/null 2>&1 || { \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman runc mmdebstrap uidmap; }
