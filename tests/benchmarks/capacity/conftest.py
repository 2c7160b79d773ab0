"""The e2e fixtures (control plane, operator, kubelet and gateway emulators), imported
from tests/e2e/conftest.py rather than copied."""

from __future__ import annotations

import sys
from pathlib import Path

from pitstop.devcluster import testing

E2E = Path(__file__).resolve().parents[2] / "e2e"
sys.path.insert(0, str(E2E))


_e2e = testing.conftest_module(E2E / "conftest.py", "pitstop_e2e_fixtures")
cluster = _e2e.cluster
namespace = _e2e.namespace
crd = _e2e.crd
release = _e2e.release
operator_kubeconfig = _e2e.operator_kubeconfig
operator = _e2e.operator
model_store = _e2e.model_store
kubelet_emulator = _e2e.kubelet_emulator
md = _e2e.md
gateway_for = _e2e.gateway_for
