# Everything a fresh machine needs is installed by these targets: the virtualenv and
# Python packages, and the local control plane's binaries (built once from Go modules
# into ~/.cache/pitstop, reused afterwards).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# Some machines set PYTHONDONTWRITEBYTECODE. The suites start a few hundred Python
# processes (operators, CLIs, model servers), and each would compile Pitstop's modules
# again: about 0.5 s of CPU apiece.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: demo demo-realnode test suites lint unit integration realnode e2e-realnode bench crd manifests venv binaries node-binaries system-deps node-deps clean

## make demo: the whole story on a local control plane with real model servers:
## v1 deploys, v2 goes through canary steps and is promoted, v3 is rolled back by itself.
demo: venv binaries
	$(BIN)/python tests/e2e/demo.py

## make test: the whole suite: lint, types, layer contracts, then the unit, integration,
## serving and e2e tests, in two phases with some suites side by side (tests/suites.py).
test: lint suites

suites: venv binaries system-deps
	$(BIN)/python tests/suites.py

lint: venv
	$(BIN)/ruff check operator tests model_images
	$(BIN)/ruff format --check operator tests model_images
	$(BIN)/mypy
	$(BIN)/lint-imports

# `python -m pytest`, not the pytest script: each operator the tests start is forked
# from a warm interpreter (devcluster.operator_process), which would run a main script
# again in every child, but not a main module.
unit: venv binaries system-deps
	$(BIN)/python -m pytest tests/unit

integration: venv binaries system-deps
	$(BIN)/python -m pytest tests --ignore=tests/unit --ignore=tests/benchmarks --ignore=tests/realnode --durations=25

## make realnode: the tests that need a real node (root; changes host networking until
## they end, and gives it back), then the e2e scenarios on a real node instead of KWOK
## and the kubelet emulator. Not part of `make test`: ≈ 37 min warm for both,
## ≈ 20 min more to build the node's binaries cold, and the host's bridge,
## iptables and sysctls are shared. See the README's real-node section.
## make demo-realnode: the demo on a real node, its images built for real (root).
demo-realnode: venv node-binaries node-deps
	$(BIN)/python tests/realnode/demo.py

realnode: venv node-binaries node-deps
	$(BIN)/python -m pytest tests/realnode -m realnode --timeout=1800
	PITSTOP_E2E_NODE=real $(BIN)/python -m pytest tests/e2e --durations=10

## make e2e-realnode: the e2e scenarios alone on a real node (root; part of `make realnode`).
e2e-realnode: venv node-binaries node-deps
	PITSTOP_E2E_NODE=real $(BIN)/python -m pytest tests/e2e --durations=10

## make system-deps: Debian packages the tests run for real (Prometheus, and its
## promtool for the alert rules' tests), installed only
## when missing (as root). The packaged service is not used: tests start their own
## Prometheus on a free port; if the package started its daemon, it is stopped again.
system-deps:
	@{ command -v prometheus && command -v promtool; } >/dev/null || { \
	  apt-get update && apt-get install -y --no-install-recommends prometheus && \
	  { invoke-rc.d prometheus stop >/dev/null 2>&1 || true; }; }

## make node-deps: Debian packages a real node needs (`pitstop dev up --node real`):
## iptables, nftables and conntrack (kubelet, kube-proxy, `down`), socat (port-forward),
## mmdebstrap (the base image), libseccomp-dev, gcc and pkg-config (runc is built with
## cgo for seccomp). As root, when missing.
NODE_DEBS := iptables nftables conntrack socat mmdebstrap libseccomp-dev gcc pkg-config
node-deps:
	@missing=$$(for p in $(NODE_DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	  | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then apt-get update && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; fi

## make node-binaries: kubelet, kube-proxy, containerd, runc, CNI plugins, CoreDNS,
## registry, BuildKit, crane and the pause program, built once into the cache, and the
## control plane's binaries if missing, in one batch (PITSTOP_BUILD_JOBS `go build`s
## at a time, 1 by default: two were slower on 2 cores; see binaries.build_jobs).
node-binaries: venv node-deps
	$(BIN)/pitstop dev build --node real

bench: venv binaries
	$(BIN)/python -m pytest tests/benchmarks -m benchmark -s

## make crd: regenerate the CRD (and the chart's copy) from operator/pitstop/api.
crd: venv
	$(BIN)/pitstop crd crds charts/pitstop/crds

## make manifests: render manifests/operator.yaml from the chart (one source of truth).
manifests: venv binaries
	( echo "# Rendered from charts/pitstop by \`make manifests\`; do not edit by hand."; \
	  "$$($(BIN)/python -c 'from pitstop.devcluster import binaries; print(binaries.bin_dir())')/helm" \
	  template pitstop charts/pitstop --namespace pitstop-system --skip-crds --kube-version v1.36.3 ) > manifests/operator.yaml

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

binaries: venv
	$(BIN)/pitstop dev build

clean:
	-$(BIN)/pitstop dev down
	rm -rf $(VENV) .dev .mypy_cache .ruff_cache .pytest_cache
