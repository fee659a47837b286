# Liaison — the commands a newcomer and CI run. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CARGO ?= cargo
DEMO_DIR ?= $(CURDIR)/.demo

.PHONY: help lint test test-unit test-faults test-model bench bench-quick testenv crds demo demo-stop clean-testenv image test-image e2e

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

lint: ## rustfmt and clippy, warnings as errors
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets --quiet -- -D warnings
	$(CARGO) clippy --bin liaison --no-default-features --quiet -- -D warnings

testenv: ## build (once) the control plane binaries from Go modules
	@scripts/testenv install

test: ## unit tests, then integration tests against a real control plane
	@mkdir -p target && bin=$$(scripts/testenv install | tail -n 1) && \
	  LIAISON_TESTENV_BIN=$$bin $(CARGO) test --all-targets -- --nocapture 2>&1 | tee target/test.log; \
	  exit $${PIPESTATUS[0]}

test-faults: ## the crash campaign with 20 trials (TRIALS=n to change)
	@bin=$$(scripts/testenv install | tail -n 1) && \
	  LIAISON_TESTENV_BIN=$$bin LIAISON_FAULT_TRIALS=$${TRIALS:-20} $(CARGO) test --test faults -- --nocapture

test-model: ## the model-based access test, SEED=n STEPS=n for long runs
	@bin=$$(scripts/testenv install | tail -n 1) && \
	  LIAISON_TESTENV_BIN=$$bin LIAISON_MODEL_SEED=$${SEED:-20261122} LIAISON_MODEL_STEPS=$${STEPS:-200} $(CARGO) test --test model -- --nocapture

bench-quick: ## the scale benchmark, small (10 partners, 100 links, 500 grants; ~2 minutes)
	@bin=$$(scripts/testenv install | tail -n 1) && LIAISON_TESTENV_BIN=$$bin $(CARGO) bench $(BENCH_FLAGS) --bench scale -- --quick

# ARGS= resizes the run; BENCH_FLAGS=--no-default-features profiles the operator on the system
# allocator (heaptrack sees no other).
bench: ## the scale benchmark, full (100 partners, 2,000 links, 10,000 grants); ARGS= to resize
	@bin=$$(scripts/testenv install | tail -n 1) && LIAISON_TESTENV_BIN=$$bin $(CARGO) bench $(BENCH_FLAGS) --bench scale -- $(ARGS)

test-unit: ## only the pure tests (no control plane)
	$(CARGO) test --lib

crds: ## regenerate crds/ and the chart's CRDs from the Rust types
	$(CARGO) run --quiet -- crds --dir crds
	$(CARGO) run --quiet -- crds --dir charts/liaison/files/crds

demo: ## a local control plane, the operator (a pod on a node if it can) and the TechHelp/Beta story
	@scripts/demo up "$(DEMO_DIR)"

demo-stop: ## stop what `make demo` started (the node included)
	@scripts/demo down "$(DEMO_DIR)"

image: ## the container image liaison:<version>, without Docker: target/image/liaison-<version>.oci.tar
	@scripts/image build

test-image: image ## run the image with podman: --version, user 65532, read-only root
	@scripts/image test

e2e: image ## the image on a real node (kubelet, containerd): helm install, the story, uninstall
	@scripts/testenv node-deps && bin=$$(scripts/testenv install | tail -n 1) && scripts/testenv install-node >/dev/null && \
	  LIAISON_TESTENV_BIN=$$bin LIAISON_TESTENV_NODE=1 $(CARGO) test --test e2e -- --ignored --nocapture

clean-testenv: ## remove the cached control plane binaries
	rm -rf "$$HOME/.cache/liaison/testenv"
