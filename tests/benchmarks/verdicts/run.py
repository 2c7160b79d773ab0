"""One simulated rollout, judged by the real code: `judge.evaluate` (sequential) or
`threshold.evaluate` (today's fixed-threshold judge), and `engine.decide` for what the
rollout does with each verdict — the same calls the reconciler makes.

Today's judge runs as it did: a measurement every `interval`, each step held for its
full pause before a passing measurement may advance it (minPause = pause). The
sequential judge looks every `tick` seconds (the operator looks every second; a coarser
tick only delays each verdict by less than one tick, and the judge's error guarantees
do not depend on how often it looks) and steps end as soon as the evidence allows.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
from pitstop.analysis import bounds, judge, threshold
from pitstop.analysis.judge import Look
from pitstop.analysis.threshold import Measurement
from pitstop.analysis.window import Window
from pitstop.api.resource import ModelDeployment
from pitstop.api.spec import AnalysisSpec
from pitstop.api.status import AnalysisStatus
from pitstop.packaging import drift as template_drift
from pitstop.strategies import engine
from pitstop.strategies.decision import Checks, ImageState, Observations, RevisionState, Traffic

from tests.benchmarks.verdicts import world
from tests.benchmarks.verdicts.world import Revision

Judge = Literal["today", "sequential"]
End = Literal["RolledBack", "Promoted", "Held"]

# The README's example analysis (the limits the issue measured today's judge with).
ANALYSIS: dict[str, Any] = {
    "interval": "15s", "failureLimit": 1, "minRequests": 50,
    "metrics": [
        {"name": "errors", "builtin": "errorRate", "maxAboveStable": 0.005},
        {"name": "p99", "builtin": "latencyP99", "maxRatioToStable": 1.2},
        {"name": "drift", "builtin": "drift", "max": 0.2},
    ],
}  # fmt: skip
DEFAULT_STEPS = [{"weight": 20, "pause": "30s"}, {"weight": 50, "pause": "30s"}]  # canary's default
T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
UP = RevisionState(replicas=2, ready_replicas=2, available=True)
IMAGE = ImageState("reg/model:2")
WINDOW_ROWS = 1000  # the template's drift window (today's judge reads its PSI)


@dataclass(frozen=True)
class Outcome:
    end: End
    seconds: float
    requests: float
    """Candidate requests served until the end."""
    metric: str | None = None
    """The metric that failed, for a rollback."""


def model(kind: Judge) -> ModelDeployment:
    steps = DEFAULT_STEPS if kind == "sequential" else [
        {**step, "minPause": step["pause"]} for step in DEFAULT_STEPS
    ]  # fmt: skip
    return ModelDeployment.model_validate({
        "metadata": {"name": "m", "namespace": "ns", "uid": "u", "generation": 1},
        "spec": {"model": {"name": "m", "version": "2"}, "image": "reg/model:2",
                 "serving": {"replicas": 2}, "analysis": ANALYSIS,
                 "strategy": {"type": "Canary", "canary": {"steps": steps}}},
        "status": {
            "stable": {"revision": "old", "version": "1", "image": "reg/model:1"},
            "candidate": {"revision": "new", "version": "2", "image": "reg/model:2",
                          "state": "Canary", "step": 0, "stepStartedAt": T0},
        },
    })  # fmt: skip


def weight(md: ModelDeployment) -> int:
    split = engine.current_split(md)
    return split.weight if split is not None and split.candidate is not None else 0


def rollout(
    kind: Judge, rps: float, stable: Revision, candidate: Revision, seed: int,
    horizon: int = 600, tick: int = 1,
) -> Outcome:  # fmt: skip
    """`tick` seconds pass between two looks (for today's judge 15 must be a multiple of
    it: it measures every 15 s); the weight is the one the engine set at the last look."""
    rng = np.random.default_rng(seed)
    md = model(kind)
    spec: AnalysisSpec = md.spec.analysis
    analysis: AnalysisStatus | None = None
    pending = {"c": Window(), "s": Window()}
    classic = {"c": dict.fromkeys((*world.CLASSIC, np.inf), 0.0),
               "s": dict.fromkeys((*world.CLASSIC, np.inf), 0.0)}  # fmt: skip
    recent_rows: deque[np.ndarray] = deque()
    served_by_candidate = 0.0
    for t in range(tick, horizon + 1, tick):
        now = T0 + timedelta(seconds=t)
        total = int(rng.poisson(rps * tick))
        n_c = int(rng.binomial(total, weight(md) / 100))
        mine, theirs = world.serve(rng, n_c, candidate), world.serve(rng, total - n_c, stable)
        served_by_candidate += n_c
        pending = {
            "c": world.add(pending["c"], mine.fine),
            "s": world.add(pending["s"], theirs.fine),
        }
        for who, got in (("c", mine), ("s", theirs)):
            for bound, count in got.classic_buckets.items():
                classic[who][bound] += count
        if n_c:
            recent_rows.append(mine.rows)
        while sum(r[0].sum() for r in recent_rows) > WINDOW_ROWS and len(recent_rows) > 1:
            recent_rows.popleft()
        if kind == "sequential" and pending["c"].requests + pending["s"].requests:
            analysis = judge.evaluate(spec, analysis, "new", now, Look(pending["c"], pending["s"]))
            pending = {"c": Window(), "s": Window()}
        elif kind == "today" and t % 15 == 0:
            measured = _today(pending, classic, recent_rows)
            analysis = threshold.evaluate(spec, analysis, "new", measured, now)
            pending = {"c": Window(), "s": Window()}
            classic = {k: dict.fromkeys(v, 0.0) for k, v in classic.items()}
        checks = (
            Checks(analysis.verdict, analysis.message) if analysis is not None
            else Checks("Inconclusive", "not measured yet")
        )  # fmt: skip
        seen = Observations("new", IMAGE, {"old": UP, "new": UP}, Traffic(), checks)
        status = engine.decide(md, seen, now).status
        md = md.model_copy(update={"status": status})
        if status.candidate is None:
            promoted = status.stable is not None and status.stable.revision == "new"
            failing = None if promoted or analysis is None else next(
                (m.name for m in analysis.metrics if m.verdict == "Fail"), None
            )  # fmt: skip
            end: End = "Promoted" if promoted else "RolledBack"
            return Outcome(end, float(t), served_by_candidate, failing)
    return Outcome("Held", float(horizon), served_by_candidate)


def _today(
    pending: dict[str, Window], classic: dict[str, dict[float, float]],
    recent_rows: deque[np.ndarray],
) -> list[Measurement]:  # fmt: skip
    """What the builtin provider measured over one interval before the sequential judge."""
    c, s = pending["c"], pending["s"]
    error = c.errors / c.requests if c.requests else None
    stable_error = s.errors / s.requests if s.requests else None
    p99 = bounds.quantile(sorted(classic["c"].items()), 0.99)
    stable_p99 = bounds.quantile(sorted(classic["s"].items()), 0.99)
    rows = sum(recent_rows) if recent_rows else np.zeros((world.FEATURES, 10))
    psi = max(template_drift.psi(world.EXPECTED, list(rows[i])) for i in range(world.FEATURES))
    return [
        Measurement("errors", error, stable_error, requests=c.requests),
        Measurement("p99", p99, stable_p99, requests=c.requests),
        Measurement("drift", psi),
    ]
