"""The capacity `analysis.stressTest` records for a candidate, against a saturation
measurement of the same pod in the same run (issue 16: within 20 %).

The operator ramps one candidate pod (PACED: 10 ms a call, one call at a time) from 40
requests/s by 10 % steps until its p99 passes 100 ms or it falls behind, and records the
last rate it sustained. The benchmark then saturates the same pod from this process —
a closed loop of 4 connections, every answer waited for, for 15 s — and takes the
throughput it reaches: the most the pod can answer, at a p99 well under the limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from harness import deployment, gateway, kubelet, models

pytestmark = pytest.mark.benchmark

TARGET = 0.2  # the recorded capacity within 20 % of the saturation throughput
STRESS = {"maxP99": "100ms", "startRate": 40, "factor": 1.1, "step": "4s", "maxRate": 400,
          "requireCapacity": False}  # fmt: skip
CANARY = {"type": "Canary", "canary": {"steps": [{"weight": 50, "pause": "10m"}]}}
ROW = {"amount": 120.0, "count": 3, "country": "de", "is_new": False}


async def saturate(url: str, connections: int, seconds: float) -> tuple[float, float]:
    """(answers per second, p99 seconds) of a closed loop of `connections`."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=10) as client:

        async def loop() -> None:
            while time.monotonic() < deadline:
                sent = time.monotonic()
                answer = await client.post(f"{url}/predict", json=ROW)
                assert answer.status_code == 200
                latencies.append(time.monotonic() - sent)

        started = time.monotonic()
        await asyncio.gather(*(loop() for _ in range(connections)))
        elapsed = time.monotonic() - started
    latencies.sort()
    return len(latencies) / elapsed, latencies[int(0.99 * len(latencies))]


def test_capacity(
    md: deployment.Deployment, gateway_for: Callable[..., gateway.Gateway],
    kubelet_emulator: kubelet.Kubelet,
) -> None:  # fmt: skip
    md.apply(models.GOOD, CANARY)
    md.healthy(models.GOOD)
    md.apply(models.PACED, CANARY, analysis={"stressTest": STRESS})
    status: dict[str, Any] = md.until(
        "the stress test's result", lambda s: ((s.get("analysis") or {}).get("stress") or {})
        .get("capacity") is not None or s.get("phase") == "RolledBack", timeout=600)  # fmt: skip
    recorded = (status.get("analysis") or {}).get("stress") or {}
    # A pod that sustained not even the first rate records no capacity: say why at once.
    assert recorded.get("capacity") is not None, status.get("message")
    (pod,) = kubelet_emulator.servers({"pitstop.dev/model-version": models.PACED})
    throughput, p99 = asyncio.run(saturate(pod.url, 4, 15.0))
    ratio = recorded["capacity"] / throughput
    print("\nCapacity of one PACED pod (10 ms a call), p99 limit 100 ms")
    print(f"  recorded by the operator's stress test: {recorded['capacity']:.1f}/s "
          f"(p99 {recorded['p99'] * 1000:.0f} ms); {recorded['message']}")  # fmt: skip
    print(f"  saturation, closed loop of 4 connections for 15 s: {throughput:.1f}/s "
          f"(p99 {p99 * 1000:.0f} ms)")  # fmt: skip
    print(f"  ratio recorded / saturation: {ratio:.2f} (target within {TARGET:.0%}: "
          f"{'met' if abs(ratio - 1) <= TARGET else 'MISSED'})")  # fmt: skip
