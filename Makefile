# model-adapter: `make demo` runs the whole flow on the embedded local store; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
IMAGE ?= model-adapter:dev
DEMO_HOME ?= $(CURDIR)/.demo
PYTEST_ARGS ?=
# Extras `make venv` (and so `make test`) installs; VENV_EXTRAS=dev leaves out torch (several GB of CUDA
# wheels), as the kind CI job does.
VENV_EXTRAS ?= dev,torch
# Extras `make demo` installs: the NumPy demo needs scikit-learn's digits, not PyTorch nor the test tools.
DEMO_EXTRAS ?= examples
# One stamp per extras set: `make demo` then `make test` adds the test extras to the same venv.
STAMP := $(VENV)/.installed-$(VENV_EXTRAS)
DEMO_STAMP := $(VENV)/.installed-$(DEMO_EXTRAS)

.DEFAULT_GOAL := help

help: ## Show the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  \033[1m%-14s\033[0m %s\n", $$1, $$2}'

# $* is the extras set, e.g. `examples` or `dev,torch`.
$(VENV)/.installed-%: pyproject.toml
	@echo ">> installing the package into $(VENV) with its extras [$*]"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[$*]'
	@touch $@

venv: $(STAMP) ## Create .venv and install everything the tests need (idempotent)

demo: $(DEMO_STAMP) ## Import the digits dataset, train, save, evaluate and predict on a local store (MODEL_ADAPTER_HOME=.demo)
	@MODEL_ADAPTER_HOME=$(DEMO_HOME) $(VENV)/bin/model-adapter demo --fresh

test: venv ## Run every test (S3 on real SeaweedFS and rclone servers, KFP local runs, steps in containers, manifest checks)
	@$(VENV)/bin/pytest $(PYTEST_ARGS)

BENCH_STAMP := $(VENV)/.bench-installed
BENCH_ARGS ?=
# e.g. BENCH_CHECK_ARGS='--all' (every row) or '--baseline old.json --threshold 0.1'
BENCH_CHECK_ARGS ?=

$(BENCH_STAMP): $(STAMP)
	@$(PY) -m pip install -q -e '.[dev,bench]'
	@touch $(BENCH_STAMP)

bench: venv $(BENCH_STAMP) ## Benchmarks (~35-40 min on 2 CPUs, not part of `make test`): bench/results/latest.json + docs/benchmarks.md, then bench-check; BENCH_ARGS=--quick for a fast pass
	@$(VENV)/bin/python -m bench $(BENCH_ARGS)
	@$(if $(findstring --quick,$(BENCH_ARGS)),echo "bench-check: skipped after --quick (its results lie under .bench/ and are at other sizes)",$(MAKE) --no-print-directory bench-check)

bench-check: venv ## Name every bench row more than 15% worse than the committed results (bench/results/latest.json vs git HEAD); fails if any
	@$(VENV)/bin/python -m bench.regression $(BENCH_CHECK_ARGS)

clean: ## Remove the demo home, caches and build outputs
	rm -rf $(DEMO_HOME) .pytest_cache .hypothesis build dist *.egg-info

include mk/image.mk
include mk/kind.mk
include mk/argo.mk

.PHONY: help venv demo test bench bench-check clean
