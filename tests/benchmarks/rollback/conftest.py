"""The e2e fixtures (control plane, operator, kubelet and gateway emulators), imported
from tests/e2e/conftest.py rather than copied."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

E2E = Path(__file__).resolve().parents[2] / "e2e"
sys.path.insert(0, str(E2E))


def _e2e_fixtures() -> Any:
    spec = importlib.util.spec_from_file_location("pitstop_e2e_fixtures", E2E / "conftest.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_e2e = _e2e_fixtures()
cluster = _e2e.cluster
namespace = _e2e.namespace
crd = _e2e.crd
operator = _e2e.operator
model_store = _e2e.model_store
kubelet_emulator = _e2e.kubelet_emulator
md = _e2e.md
gateway_for = _e2e.gateway_for
