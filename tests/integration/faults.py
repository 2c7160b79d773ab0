"""Faults on a schedule drawn from a seed: operator replicas killed (SIGKILL) at random
moments and started again, the kube-apiserver restarted in place with etcd kept, and
the leader killed and left dead until the standby has taken its Lease (a handover).

One fault at a time, in one thread, so the schedule, not the machine's speed, says
what happens in which order. A killed replica is started again at once and the
schedule goes on while it starts, as a kubelet restarts a container; a kill waits for
its target to be live, so that every SIGKILL hits a running operator. The random waits
only place faults at random moments; nothing waits on them for a result.
"""

from __future__ import annotations

import collections
import dataclasses
import random
import threading
import time
from pathlib import Path
from typing import Literal

from pitstop.devcluster import cluster as devcluster
from pitstop.devcluster import testing
from replicas import Replicas

# How long a replica may take to start on a loaded machine (imports, first login);
# generous, as 2 cores shared with heavy work make every start slow.
LIVE_SECONDS = 300.0
What = Literal["kill leader", "kill standby", "restart apiserver", "crash apiserver", "handover"]


@dataclasses.dataclass(frozen=True)
class Fault:
    wait: float  # seconds between the end of the previous fault and this one
    what: What


def plan(seed: int, kills: int = 50) -> list[Fault]:
    """`kills` kills of the leader or the standby, at random; among them, at drawn places
    apart from each other, a graceful API server restart, a handover and an API server
    crash (SIGKILL), in that order."""
    rng = random.Random(seed)
    faults = [
        Fault(round(rng.uniform(0.2, 2.5), 2), rng.choice(("kill leader", "kill standby")))
        for _ in range(kills)
    ]
    # Inserted from the last place back, so the earlier places stay where drawn.
    places: list[tuple[int, What]] = [
        (rng.randint(kills // 5, 2 * kills // 5), "restart apiserver"),
        (rng.randint(2 * kills // 5 + 1, 3 * kills // 5), "handover"),
        (rng.randint(3 * kills // 5 + 1, 4 * kills // 5), "crash apiserver"),
    ]
    for index, what in reversed(places):
        faults.insert(index, Fault(round(rng.uniform(0.2, 2.5), 2), what))
    return faults


class Faults(threading.Thread):
    """Carries out a plan; `counts`, `log` and `error` say what happened."""

    def __init__(
        self, cluster: testing.DevCluster, replicas: Replicas, faults: list[Fault], seed: int
    ) -> None:
        super().__init__(name="faults", daemon=True)
        self.cluster, self.replicas, self.plan = cluster, replicas, faults
        self.rng = random.Random(seed ^ 0x5EED)  # whom to kill when nobody leads
        self.counts: collections.Counter[str] = collections.Counter()
        self.log: list[tuple[float, str]] = []  # (time.monotonic(), what was done)
        self.handovers: list[float] = []  # seconds from SIGKILL to the Lease taken
        self.restarts: list[float] = []  # seconds the API server was away
        self.error: BaseException | None = None
        self.exited: list[str] = []  # replicas that exited by themselves, with their log's end
        self.over = threading.Event()  # set when the plan is carried out (or failed)
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            for fault in self.plan:
                if self._halt.wait(fault.wait):
                    return
                self._revive()
                if fault.what in ("kill leader", "kill standby"):
                    self._kill(fault.what)
                elif fault.what == "handover":
                    self._handover()
                else:
                    self._restart_apiserver(crash=fault.what == "crash apiserver")
            self._revive()
            for process in self.replicas.processes.values():
                process.wait_live(LIVE_SECONDS)
        except BaseException as error:  # the test fails on it
            self.error = error
        finally:
            self.over.set()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=120)

    def _note(self, what: str) -> None:
        self.log.append((time.monotonic(), what))

    def _revive(self) -> None:
        """A replica that exited by itself is started again, as its pod's kubelet would."""
        for name, process in self.replicas.processes.items():
            if not process.running():
                self.exited.append(f"{name}:\n{process.log()[-2000:]}")
                self.counts["replicas that exited by themselves"] += 1
                process.start(wait=False)

    def _kill(self, what: What) -> None:
        holder = self.replicas.holder()
        names = list(self.replicas.processes)
        if holder in names:
            role = what.removeprefix("kill ")
            target = holder if role == "leader" else next(n for n in names if n != holder)
        else:  # the Lease is changing hands, or the API server is busy: anyone
            role, target = "replica while nobody led", self.rng.choice(names)
        process = self.replicas.processes[target]
        process.wait_live(LIVE_SECONDS)
        process.kill()
        self.counts["kills"] += 1
        self.counts[f"kills of the {role}"] += 1
        self._note(f"SIGKILL {target} ({role})")
        process.start(wait=False)

    def _handover(self) -> None:
        """Kill the leader and start it again only once the standby leads."""
        names = list(self.replicas.processes)
        leader = self.cluster.wait("a leader", lambda: (h := self.replicas.holder()) in names and h)
        standby = next(n for n in names if n != leader)
        self.replicas.processes[standby].wait_live(LIVE_SECONDS)
        self.replicas.processes[leader].wait_live(LIVE_SECONDS)
        # Killed right after it renewed, so that the time measured is a whole handover
        # (a lease duration and a retry), not the end of a Lease it was failing to renew.
        renewed = self._renewed()
        self.cluster.wait(f"{leader} to renew the Lease",
                          lambda: self._renewed() not in ("", renewed)
                          and self.replicas.holder() == leader,
                          timeout=LIVE_SECONDS, interval=0.05)  # fmt: skip
        self.replicas.processes[leader].kill()
        killed = time.monotonic()
        self.counts["kills"] += 1
        self.counts["kills of the leader"] += 1
        self._note(f"SIGKILL {leader} (leader), left dead for a handover")
        self.cluster.wait(f"{standby} to take the Lease",
                          lambda: self.replicas.holder() == standby, interval=0.05)  # fmt: skip
        self.handovers.append(time.monotonic() - killed)
        self.counts["handovers forced"] += 1
        self._note(f"{standby} took the Lease after {self.handovers[-1]:.1f}s")
        self.replicas.processes[leader].start(wait=False)

    def _renewed(self) -> str:
        """The Lease's renewTime; empty while the API server does not answer."""
        lease = self.cluster.read("lease", self.replicas.lease,
                                  namespace=self.replicas.namespace) or {}  # fmt: skip
        return str((lease.get("spec") or {}).get("renewTime") or "")

    def _restart_apiserver(self, *, crash: bool) -> None:
        started = time.monotonic()
        devcluster.Cluster(Path(self.cluster.state_dir)).restart_apiserver(crash=crash)
        self.restarts.append(time.monotonic() - started)
        self.counts["apiserver restarts"] += 1
        self._note(f"kube-apiserver {'crashed' if crash else 'restarted'}, "
                   f"ready again after {self.restarts[-1]:.1f}s")  # fmt: skip
