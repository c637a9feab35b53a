# The generated Argo Workflows manifests (manifests/overlays/argo): rendered by
# the CLI from pipelines/argo and pipelines/compute.py, never edited by hand.
# tests/manifests/test_manifests_argo.py runs the same commands and compares.
ARGO_OVERLAY := manifests/overlays/argo
ARGO_IMAGE := model-adapter:dev

.PHONY: argo-manifests
argo-manifests: ## Regenerate the Argo Workflows manifests (manifests/overlays/argo) from the CLI
	@MODEL_ADAPTER_IMAGE= $(PY) -m adapter_base.cli.main argo schedule train --image $(ARGO_IMAGE) --profile gpu \
		--cron "0 3 * * *" --name model-adapter-train-nightly --adapter examples.digits.adapter:DigitsAdapter \
		--model digits-mlp --render $(ARGO_OVERLAY)/train.yaml
	@MODEL_ADAPTER_IMAGE= $(PY) -m adapter_base.cli.main argo compile predict --image $(ARGO_IMAGE) --profile gpu \
		-o $(ARGO_OVERLAY)/predict.yaml
