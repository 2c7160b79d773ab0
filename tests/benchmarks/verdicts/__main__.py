"""Verdict benchmark: the sequential judge against today's fixed-threshold judge.

    python -m tests.benchmarks.verdicts                # the full grid, 2,000 rollouts a cell
    python -m tests.benchmarks.verdicts --rollouts 200 --rps 20 50 --candidates aa plus20

Every cell (traffic x baseline error x candidate) runs N seeded rollouts of the default
canary (20 % for 30 s, 50 % for 30 s) with the README's limits (errorRate
maxAboveStable 0.005, latencyP99 maxRatioToStable 1.2, drift max 0.2; failureLimit 1,
minRequests 50, interval 15s) through the real judge and rollout engine, once with each
judge, seed by seed on the same simulated traffic (world.py). A rollout ends Promoted,
RolledBack, or Held when the horizon (default 10 min) comes first. For candidates
within every limit a rollback is a false rollback; for the others a rollback before
promotion is a detection.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from pitstop.analysis import judge
from pitstop.analysis.judge import Look
from pitstop.analysis.window import Window
from pitstop.packaging import drift as template_drift

from tests.benchmarks.verdicts import oracle, run, world
from tests.benchmarks.verdicts.run import Judge, Outcome
from tests.benchmarks.verdicts.world import Revision

LIMIT, RATIO, PSI_MAX = 0.005, 1.2, 0.2
ALPHA = 0.01 / 3  # the default confidence, split over the three metrics


@dataclass(frozen=True)
class Candidate:
    name: str
    label: str
    factor: float = 1.0  # error rate x factor
    plus: float = 0.0  # + points of errors
    slow: float = 1.0
    shift: float = 0.0

    def revision(self, baseline: float) -> Revision:
        return Revision(min(1.0, baseline * self.factor + self.plus), self.slow, self.shift)

    def breaks(self, baseline: float) -> bool:
        extra = baseline * (self.factor - 1) + self.plus
        return extra > LIMIT or self.slow > RATIO or world.psi_of_shift(self.shift) > PSI_MAX


CANDIDATES = (
    Candidate("aa", "identical (A/A)"),
    Candidate("x2", "2x errors", factor=2),
    Candidate("x3", "3x errors", factor=3),
    Candidate("plus20", "+20 points of errors", plus=0.2),
    Candidate("p99x1.5", "p99 1.5x", slow=1.5),
    Candidate("p99x3", "p99 3x", slow=3),
    Candidate("drift0.5", "feature shifted 0.5 sd", shift=0.5),
    Candidate("drift3", "feature shifted 3 sd", shift=3),
)
RPS = (1, 5, 20, 50, 200)
BASELINES = (0.001, 0.01, 0.05)


@dataclass(frozen=True)
class Cell:
    rps: float
    baseline: float
    candidate: Candidate


def _one(args: tuple[Judge, Cell, int, int, int]) -> Outcome:
    kind, cell, seed, horizon, tick = args
    return run.rollout(
        kind, cell.rps, Revision(cell.baseline), cell.candidate.revision(cell.baseline), seed,
        horizon=horizon, tick=tick,
    )  # fmt: skip


@dataclass(frozen=True)
class Summary:
    rolled_back: float
    promoted: float
    held: float
    seconds: float | None  # median to the end, over rollouts that ended
    requests: float | None
    promoted_seconds: float | None
    within_30s: float


def summarise(outcomes: Sequence[Outcome]) -> Summary:
    n = len(outcomes)
    ended = [o for o in outcomes if o.end != "Held"]
    promoted = [o.seconds for o in outcomes if o.end == "Promoted"]
    return Summary(
        rolled_back=sum(o.end == "RolledBack" for o in outcomes) / n,
        promoted=len(promoted) / n,
        held=sum(o.end == "Held" for o in outcomes) / n,
        seconds=statistics.median(o.seconds for o in ended) if ended else None,
        requests=statistics.median(o.requests for o in ended) if ended else None,
        promoted_seconds=statistics.median(promoted) if promoted else None,
        within_30s=sum(o.end == "RolledBack" and o.seconds <= 30 for o in outcomes) / n,
    )


def _fmt(x: float | None, unit: str = "") -> str:
    return "-" if x is None else f"{x:.0f}{unit}"


def _row(cell: Cell, today: Summary, new: Summary) -> str:
    breaks = cell.candidate.breaks(cell.baseline)
    verdict = "detected" if breaks else "FALSE rollback"
    parts = [f"{cell.rps:>4g} {cell.baseline:>6.1%} {cell.candidate.label:<24} "
             f"{'breaks' if breaks else 'within':<7}"]  # fmt: skip
    for s in (today, new):
        parts.append(
            f"| {s.rolled_back:6.1%} {s.promoted:6.1%} {s.held:6.1%} "
            f"{_fmt(s.seconds, 's'):>5} {_fmt(s.requests):>6} {_fmt(s.promoted_seconds, 's'):>5} "
        )
    return " ".join(parts) + f"  ({verdict} = rolled back)"


def drift_windows(draws: int, seed: int) -> list[str]:
    """A/A drift false alarms by window size: today's PSI > 0.2 against the judge."""
    rng = np.random.default_rng(seed)
    metric = run.model("sequential").spec.analysis.metrics[2]
    spec = run.model("sequential").spec.analysis.model_copy(update={"metrics": [metric]})
    lines = []
    for rows in (50, 100, 200, 500, 1000):
        today = new = 0
        for _ in range(draws):
            served = world.serve(rng, rows, Revision(0.0))
            psi = max(template_drift.psi(world.EXPECTED, list(r)) for r in served.rows)
            today += psi > PSI_MAX
            status = judge.evaluate(spec, None, "c", run.T0, Look(served.fine, Window()))
            new += status.verdict == "Fail"
        lines.append(
            f"  {rows:>5} rows: today {today / draws:6.1%}   sequential {new / draws:6.2%}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--rollouts", type=int, default=2000)
    parser.add_argument("--horizon", type=int, default=600, help="seconds before a rollout counts as Held")  # fmt: skip
    parser.add_argument("--tick", type=int, default=5, help="seconds between the sequential judge's looks (the operator: 1)")  # fmt: skip
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--rps", type=float, nargs="*", default=RPS)
    parser.add_argument("--baselines", type=float, nargs="*", default=BASELINES)
    parser.add_argument("--candidates", nargs="*", default=[c.name for c in CANDIDATES])
    parser.add_argument("--seed", type=int, default=20261129)
    args = parser.parse_args()
    cells = [
        Cell(rps, baseline, candidate)
        for candidate in CANDIDATES if candidate.name in args.candidates
        for rps in args.rps
        for baseline in args.baselines
    ]  # fmt: skip
    started = time.monotonic()
    print(__doc__.split("\n\n", 2)[2])
    print(f"{len(cells)} cells x {args.rollouts} rollouts x 2 judges; horizon {args.horizon}s, "
          f"the sequential judge looks every {args.tick}s, seed "
          f"{args.seed}\n")  # fmt: skip
    header = ("rps   base  candidate                truth   |  today: rolled promo   held   "
              "med s  med req prom s | sequential: rolled promo held  med s med req prom s")  # fmt: skip
    print(header)
    results: dict[tuple[Judge, Cell], Summary] = {}
    with ProcessPoolExecutor(args.processes) as pool:
        for cell in cells:
            for kind in ("today", "sequential"):
                # Today's judge measures every 15 s (its interval): tick 5 s keeps it
                # exact. The sequential judge's tick only delays its verdicts.
                tick = 5 if kind == "today" else args.tick
                jobs = [(kind, cell, args.seed + i, args.horizon, tick) for i in range(args.rollouts)]  # fmt: skip
                results[kind, cell] = summarise(list(pool.map(_one, jobs, chunksize=25)))
            print(_row(cell, results["today", cell], results["sequential", cell]), flush=True)
    print("\nDrift false alarms on identical distributions (one look at a window of rows):")
    print("\n".join(drift_windows(min(args.rollouts, 2000), args.seed)))
    print(targets(results, args))
    print(f"\n{time.monotonic() - started:.0f}s")


def targets(results: dict[tuple[Judge, Cell], Summary], args: argparse.Namespace) -> str:
    lines = ["\nTargets (sequential judge):"]
    good = [(c, s) for (k, c), s in results.items() if k == "sequential" and not c.candidate.breaks(c.baseline)]  # fmt: skip
    worst = max((s.rolled_back for _, s in good), default=0.0)
    lines.append(f"  A/A and within-limit candidates: false rollback <= 1% in every cell: worst {worst:.2%}")  # fmt: skip
    for (kind, cell), s in results.items():
        if kind != "sequential":
            continue
        name, rps, base = cell.candidate.name, cell.rps, cell.baseline
        if name == "plus20" and rps >= 5:
            bound = oracle.detection_power(rps, 30, base, 0.2, LIMIT, ALPHA)
            sequential = oracle.sequential_detection(rps, 30, base, 0.2, LIMIT, ALPHA)
            lines.append(f"  +20 points rolled back within 2 intervals (30 s), {rps:g} rps, {base:.1%}: "
                         f"{s.within_30s:.1%} (oracle fixed-sample test at 30 s knowing the "
                         f"stable's rate: {bound:.1%}; e-process betting on the true rates: "
                         f"{sequential:.1%})")  # fmt: skip
        if name == "x3" and rps == 200 and base == 0.01:
            lines.append(f"  3x errors at 1% / 200 rps caught before the canary ends: {s.rolled_back:.1%}")  # fmt: skip
        if name in ("p99x3", "p99x1.5") and rps >= 20:
            bound = [oracle.p99_detection_power(rps, t, cell.candidate.slow, RATIO, ALPHA)
                     for t in (60, args.horizon)]  # fmt: skip
            sequential = oracle.p99_sequential_detection(rps, args.horizon, cell.candidate.slow,
                                                         RATIO, ALPHA)  # fmt: skip
            lines.append(f"  {cell.candidate.label} caught at {rps:g} rps, {base:.1%}: {s.rolled_back:.1%} "
                         f"(target {'99' if name == 'p99x3' else '90'}%), median {_fmt(s.seconds, 's')} "
                         f"(oracle fixed-sample test knowing the stable's p99, canary advancing "
                         f"on time: {bound[0]:.0%} at 60 s, {bound[1]:.0%} at {args.horizon} s; "
                         f"e-process betting on the true shares, canary held at its first "
                         f"step: {sequential:.1%} within {args.horizon} s)")  # fmt: skip
        if name == "aa" and rps >= 50:
            today = results["today", cell]
            errors = oracle.seconds_to_pass_errors(rps, base, LIMIT, ALPHA)
            p99 = oracle.seconds_to_pass_p99(rps, RATIO, ALPHA)
            sequential = oracle.sequential_seconds_to_promote(rps, base, LIMIT, RATIO, ALPHA)
            lines.append(
                f"  A/A at {rps:g} rps, {base:.1%}: promoted {s.promoted:.1%}, median "
                f"{_fmt(s.promoted_seconds, 's')} (today {_fmt(today.promoted_seconds, 's')}); "
                f"oracle fixed-sample tests need >= {errors:.0f}s to pass errors, >= {p99:.0f}s "
                f"to pass p99; e-processes betting on the truth promote in a median "
                f"{_fmt(sequential, 's')} (no sequential judge can match the fixed pauses "
                f"where that exceeds {sum(pause for _, pause in oracle.STEPS)} s)"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
