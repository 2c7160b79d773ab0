"""Two replicas of the operator, as the chart runs them: `pitstop run --leader-elect` on
one Lease in the release's namespace, with the chart's ServiceAccount token, and what
the test sees of them (who holds the Lease)."""

from __future__ import annotations

import uuid
from pathlib import Path

from pitstop.devcluster import install, testing
from pitstop.devcluster.operator_process import Election, OperatorProcess

NAMES = ("replica-a", "replica-b")


class Replicas:
    """Two `pitstop run --leader-elect` on one Lease of their own."""

    def __init__(
        self,
        cluster: testing.DevCluster,
        release: install.Release,
        kubeconfig: Path,
        logs: Path,
        *,
        duration: int,
        renew_deadline: float,
        retry_period: float,
    ) -> None:
        self.cluster, self.namespace = cluster, release.namespace
        self.lease = f"replicas-{uuid.uuid4().hex[:8]}"
        election = Election(release.namespace, self.lease, duration, renew_deadline,
                            retry_period)  # fmt: skip
        self.processes = {
            name: OperatorProcess(
                kubeconfig, logs / f"operator-{name}.log", election=election, identity=name
            )
            for name in NAMES
        }

    def start(self) -> None:
        """The first one leads (it is started alone), then the second stands by."""
        self.processes["replica-a"].start()
        self.cluster.wait("replica-a leads", lambda: self.holder() == "replica-a")
        self.processes["replica-b"].start()

    def holder(self) -> str:
        """Who holds the Lease; empty when nobody does, or the API server does not answer."""
        lease = self.cluster.read("lease", self.lease, namespace=self.namespace) or {}
        return str((lease.get("spec") or {}).get("holderIdentity") or "")

    def leader(self) -> OperatorProcess:
        return self.processes[self.holder()]

    def standby(self) -> OperatorProcess:
        return next(p for name, p in self.processes.items() if name != self.holder())

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop()

    def assert_not_refused(self) -> None:
        for process in self.processes.values():
            process.assert_not_refused()
