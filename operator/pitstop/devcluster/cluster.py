"""The local control plane as one object: `Cluster(state_dir).up()`, `.down()`, `.env()`.

This module owns the order in which the components start and the conditions that make
the cluster usable: etcd healthy, the apiserver ready, the fake nodes Ready, and the
`default` ServiceAccount created (pods are refused until it exists). Everything about a
running cluster is recorded in `state.json` under the state dir, so a later `down` (from
another process) finds and stops exactly what `up` started; a second `up` on a healthy
cluster returns the recorded info instead of starting anything.

Listeners are all on 127.0.0.1 and on ports chosen free at start, so several clusters
(a developer's and the test suite's) run side by side.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import ipaddress
import json
import os
import shlex
import shutil
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from pitstop.devcluster import (
    binaries,
    capacity,
    certs,
    components,
    hostnet,
    kubeconfig,
    nodebinaries,
    nodeconfig,
    processes,
    realnode,
    stages,
)

DEFAULT_POD_CIDR = "127.200.0.0/16"
NODE_COUNT = 2
STATE_FILE = "state.json"
# What `up` creates under the state dir, and the only things `down --purge` removes.
_OWNED = ("pki", "etcd-data", "logs", "kwok", "kwok.yaml", STATE_FILE, "kubeconfig", "node")
# `kwok`: fake nodes, pods Running without containers (fast, no root). `real`: one real
# node (containerd, kubelet, kube-proxy, CNI, CoreDNS, registry, BuildKit; root).
NODE_KINDS = ("kwok", "real")

Log = Callable[[str], None]
_Running = processes.Running  # ClusterInfo's field `processes` hides the module there


# Starts tried when a chosen port is taken before a component binds it.
PORT_ATTEMPTS = 3
APISERVER = "kube-apiserver"
# Under logs/: one line per restart of the kube-apiserver, from stop to ready.
OUTAGES_FILE = "kube-apiserver-outages.jsonl"


class ClusterError(RuntimeError):
    """The control plane did not come up; the message names the component and its log."""


@dataclasses.dataclass(frozen=True)
class ClusterInfo:
    """Everything a client needs, as recorded in `state.json`."""

    state_dir: Path
    bin_dir: Path
    kubeconfig: Path
    server: str
    ports: dict[str, int]
    processes: tuple[processes.Running, ...]
    pod_cidr: str
    node: str = "kwok"

    @property
    def registry(self) -> str | None:
        """`host:port` of the real node's registry (plain HTTP), None with KWOK."""
        return nodeconfig.registry_host() if self.node == "real" else None

    def to_json(self) -> str:
        return json.dumps(
            {
                "state_dir": str(self.state_dir),
                "bin_dir": str(self.bin_dir),
                "kubeconfig": str(self.kubeconfig),
                "server": self.server,
                "ports": self.ports,
                "processes": [dataclasses.asdict(p) for p in self.processes],
                "pod_cidr": self.pod_cidr,
                "node": self.node,
            },
            indent=2,
        )

    @property
    def layout(self) -> components.Layout:
        """Where the components listen and what they trust, as recorded: a component
        started again from it gets the flags and the port it first had."""
        pki = certs.Pki.at(self.state_dir / "pki")
        return components.Layout(state_dir=self.state_dir, pki=pki, ports=dict(self.ports))

    def replacing(self, running: _Running) -> ClusterInfo:
        """The same cluster with the process of `running`'s name replaced by it."""
        if running.name not in {p.name for p in self.processes}:
            raise KeyError(f"no {running.name} recorded")
        kept = tuple(running if p.name == running.name else p for p in self.processes)
        return dataclasses.replace(self, processes=kept)

    @classmethod
    def from_json(cls, text: str) -> ClusterInfo:
        data: dict[str, Any] = json.loads(text)
        return cls(
            state_dir=Path(data["state_dir"]),
            bin_dir=Path(data["bin_dir"]),
            kubeconfig=Path(data["kubeconfig"]),
            server=str(data["server"]),
            ports={str(k): int(v) for k, v in data["ports"].items()},
            processes=tuple(processes.Running(**p) for p in data["processes"]),
            pod_cidr=str(data["pod_cidr"]),
            node=str(data.get("node", "kwok")),
        )


@dataclasses.dataclass(frozen=True)
class Outage:
    """A restart of the kube-apiserver: from just before it stopped until it was ready
    again, in local wall-clock time as the components' and the operator's logs write it.

    In between, clients are turned away, and worse: a kube-apiserver answers as soon as
    it listens, before its RBAC informers have synced (its /readyz waits for them, a
    client that connects directly does not), and for that moment it refuses everyone
    with 403 Forbidden (kubernetes/kubernetes#121635). A refusal then says nothing about
    the refused client's RBAC."""

    start: datetime
    end: datetime

    def covers(self, moment: datetime, *, margin: float = 1.0) -> bool:
        """Whether `moment` falls in the outage, or `margin` seconds after it (a client
        logs an answer a moment after it came)."""
        return self.start <= moment <= self.end + timedelta(seconds=margin)

    def to_json(self) -> str:
        return json.dumps({"start": self.start.isoformat(), "end": self.end.isoformat()})

    @classmethod
    def from_json(cls, text: str) -> Outage:
        data = json.loads(text)
        return cls(datetime.fromisoformat(data["start"]), datetime.fromisoformat(data["end"]))


def outages(state_dir: Path) -> list[Outage]:
    """The kube-apiserver restarts of the cluster in `state_dir`, oldest first."""
    path = state_dir / "logs" / OUTAGES_FILE
    if not path.exists():
        return []
    return [Outage.from_json(line) for line in path.read_text().splitlines() if line.strip()]


def _service_ip() -> str:
    # The `kubernetes` Service always takes the first address of the service range.
    return str(next(ipaddress.ip_network(components.SERVICE_CIDR).hosts()))


def _check_alive(started: Sequence[processes.Running]) -> None:
    """Raise, with the tail of its log, if one of `started` has exited."""
    for proc in started:
        if not processes.alive(proc):
            tail = Path(proc.log).read_text(errors="replace").splitlines()[-20:]
            raise ClusterError(
                f"{proc.name} exited during start; last lines of {proc.log}:\n" + "\n".join(tail)
            )


def _poll(
    what: str, check: Callable[[], bool], *, deadline: float, fail: Callable[[], None]
) -> None:
    """Call `check` until it is true; `fail` raises early when a component died."""
    while True:
        fail()
        with contextlib.suppress(httpx.HTTPError, OSError, ValueError):
            if check():
                return
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out waiting for {what}")
        time.sleep(0.1)


class Cluster:
    """A control plane whose state lives in `state_dir`."""

    def __init__(
        self,
        state_dir: Path,
        *,
        pod_cidr: str = DEFAULT_POD_CIDR,
        nodes: int = NODE_COUNT,
        log: Log = lambda _: None,
        probe_readiness: bool = False,
        node: str = "kwok",
        client_qps: int | None = None,
    ) -> None:
        """`client_qps`: raise the controller-manager's and scheduler's API client limits
        to this (scale benchmarks); None keeps Kubernetes' defaults."""
        if node not in NODE_KINDS:
            raise ValueError(f"node must be one of {NODE_KINDS}, not {node!r}")
        self.node = node
        self.state_dir = state_dir.resolve()
        capacity.node_pod_cidrs(
            pod_cidr, nodes
        )  # refuse a range too small before starting anything
        self.pod_cidr = pod_cidr
        # See stages: pods with a readinessProbe start NotReady; the caller's kubelet
        # emulator marks them Ready once their server answers.
        self.probe_readiness = probe_readiness
        self.nodes = nodes
        self.log = log
        self.client_qps = client_qps

    # --- reading state -------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.state_dir / STATE_FILE

    def info(self) -> ClusterInfo | None:
        """The recorded cluster, whether or not it still runs."""
        try:
            return ClusterInfo.from_json(self.state_file.read_text())
        except FileNotFoundError:
            return None

    def status(self) -> dict[str, bool]:
        """Component name -> whether its process runs; empty when nothing was started."""
        info = self.info()
        return {p.name: processes.alive(p) for p in info.processes} if info else {}

    def healthy(self, info: ClusterInfo) -> bool:
        if not all(processes.alive(p) for p in info.processes):
            return False
        try:
            with self._client(info) as client:
                return client.get("/readyz").status_code == 200
        except (httpx.HTTPError, OSError):
            return False

    def env(self) -> str:
        """Shell lines for `eval $(pitstop dev env)`: KUBECONFIG and PATH with our binaries."""
        info = self.info()
        kubeconfig_path = info.kubeconfig if info else self.state_dir / "kubeconfig"
        bin_dir = info.bin_dir if info else binaries.bin_dir()
        return (
            f"export KUBECONFIG={shlex.quote(str(kubeconfig_path))};\n"
            f'export PATH={shlex.quote(str(bin_dir))}:"$PATH";\n'
        )

    # --- up ------------------------------------------------------------------------------

    def up(self, *, timeout: float = 180.0) -> ClusterInfo:
        """Start the control plane, or return the running one unchanged."""
        if self.node == "real":
            try:
                hostnet.require_root()
            except hostnet.HostError as error:
                raise ClusterError(str(error)) from error
        existing = self.info()
        if existing is not None:
            if existing.node != self.node and self.healthy(existing):
                raise ClusterError(
                    f"a {existing.node} cluster runs in {self.state_dir}: "
                    "`pitstop dev down` it first"
                )
            if self.healthy(existing):
                self.log(f"cluster already running at {existing.server}")
                return existing
            self.log("stale cluster state found; stopping what is left of it")
            self.down()
        if self.node == "real":
            bin_dir = nodebinaries.ensure(self.log, control_plane=binaries.cluster_builds())
        else:
            bin_dir = binaries.ensure_binaries(log=self.log, catalog=binaries.cluster_builds())
        for attempt in range(1, PORT_ATTEMPTS + 1):
            self._clean()
            started: list[processes.Running] = []
            try:
                return self._start(bin_dir, started, deadline=time.monotonic() + timeout)
            except ClusterError as error:
                # Ports are chosen free, then bound by the components a moment later:
                # another process on the host may take one in between. Start afresh.
                self._abandon(bin_dir, started)
                if "address already in use" not in str(error) or attempt == PORT_ATTEMPTS:
                    raise
                self.log(
                    f"a port was taken while starting; trying again ({attempt}/{PORT_ATTEMPTS})"
                )
            except BaseException:
                self._abandon(bin_dir, started)
                raise
        raise AssertionError("unreachable")

    def _abandon(self, bin_dir: Path, started: list[processes.Running]) -> None:
        """Stop what a failed start started; a real node also gives the host back."""
        for proc in reversed(started):
            processes.stop(proc)
        if self.node == "real" and (self.state_dir / "node" / hostnet.HOST_FILE).exists():
            realnode.stop_host(self.state_dir, bin_dir, self.log)

    def _clean(self) -> None:
        for name in _OWNED:
            path = self.state_dir / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)

    def _start(
        self, bin_dir: Path, started: list[processes.Running], *, deadline: float
    ) -> ClusterInfo:
        t0 = time.monotonic()
        state = self.state_dir
        logs = state / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        real = self.node == "real"
        if real:
            pki = certs.generate(
                state / "pki",
                service_ip=nodeconfig.kubernetes_service_ip(),
                extra_ips=(nodeconfig.gateway(),),
            )
            realnode.issue_certs(state / "pki")
            realnode.prepare_host(state, self.log)
        else:
            pki = certs.generate(state / "pki", service_ip=_service_ip())
        layout = components.Layout(
            state_dir=state,
            pki=pki,
            ports={name: processes.free_port() for name in components.PORT_NAMES},
            apiserver_host=nodeconfig.gateway() if real else "127.0.0.1",
        )
        server = layout.server
        admin_kubeconfig = kubeconfig.write(
            state / "kubeconfig",
            server=server,
            ca=pki.ca.cert,
            cert=pki.admin.cert,
            key=pki.admin.key,
            user="pitstop-admin",
        )

        def launch(name: str, args: list[str], env: dict[str, str] | None = None) -> None:
            started.append(processes.start(name, bin_dir / name, args, log_dir=logs, env=env))

        def fail_if_dead() -> None:
            _check_alive(started)

        def component_kubeconfig(name: str, pair: certs.KeyPair) -> Path:
            return kubeconfig.write(
                state / "pki" / f"{name}.kubeconfig",
                server=server,
                ca=pki.ca.cert,
                cert=pair.cert,
                key=pair.key,
                user=f"system:{name}",
            )

        launch("etcd", components.etcd(layout))
        _poll(
            "etcd",
            lambda: httpx.get(f"{layout.etcd_url}/health", timeout=2).json()["health"] == "true",
            deadline=deadline,
            fail=fail_if_dead,
        )
        self.log(f"etcd healthy after {time.monotonic() - t0:.1f}s")

        apiserver_args = components.kube_apiserver(layout)
        if real:
            apiserver_args = realnode.apiserver_flags(apiserver_args, state / "pki")
        launch(APISERVER, apiserver_args)
        with self._client_for(server, pki) as client:
            _poll(
                "kube-apiserver /readyz",
                lambda: client.get("/readyz").status_code == 200,
                deadline=deadline,
                fail=fail_if_dead,
            )
        self.log(f"kube-apiserver ready after {time.monotonic() - t0:.1f}s")

        controller_manager_args = components.kube_controller_manager(
            layout, component_kubeconfig("kube-controller-manager", pki.controller_manager)
        )
        if real:
            controller_manager_args = realnode.controller_manager_flags(controller_manager_args)
        scheduler_args = components.kube_scheduler(
            layout, component_kubeconfig("kube-scheduler", pki.scheduler)
        )
        if self.client_qps is not None:
            controller_manager_args = components.raised_client_limits(
                controller_manager_args, self.client_qps
            )
            scheduler_args = components.raised_client_limits(
                scheduler_args, self.client_qps, scheduler=True
            )
        launch("kube-controller-manager", controller_manager_args)
        launch("kube-scheduler", scheduler_args)
        with self._client_for(server, pki) as client:
            if real:
                try:
                    realnode.start(
                        node=realnode.layout(
                            state,
                            bin_dir,
                            {n: processes.free_port() for n in nodeconfig.NODE_PORT_NAMES},
                        ),
                        server=server,
                        admin_kubeconfig=admin_kubeconfig,
                        client=client,
                        launch=lambda name, args, env: launch(name, args, env),
                        fail=fail_if_dead,
                        deadline=deadline,
                        log=self.log,
                    )
                except (realnode.NodeError, RuntimeError) as error:
                    raise ClusterError(str(error)) from error
            else:
                self._start_kwok(layout, admin_kubeconfig, client, launch, fail_if_dead, deadline)
            self.log(f"nodes Ready after {time.monotonic() - t0:.1f}s")
            _poll(
                "default ServiceAccount",
                lambda: (
                    client.get("/api/v1/namespaces/default/serviceaccounts/default").status_code
                    == 200
                ),
                deadline=deadline,
                fail=fail_if_dead,
            )
        for name in ("controller-manager", "scheduler"):
            _poll(
                f"kube-{name} /healthz",
                functools.partial(_healthz, layout.ports[name]),
                deadline=deadline,
                fail=fail_if_dead,
            )

        info = ClusterInfo(
            state_dir=state,
            bin_dir=bin_dir,
            kubeconfig=admin_kubeconfig,
            server=server,
            ports=layout.ports,
            processes=tuple(started),
            pod_cidr=nodeconfig.CLUSTER_CIDR if real else self.pod_cidr,
            node=self.node,
        )
        self.state_file.write_text(info.to_json())
        self.log(f"cluster up at {server} in {time.monotonic() - t0:.1f}s")
        return info

    # --- restart -------------------------------------------------------------------------

    def restart_apiserver(self, *, crash: bool = False, timeout: float = 120.0) -> ClusterInfo:
        """Stop the kube-apiserver and start it again in place, as an upgrade or a crash
        of the control plane's node does: the same flags and port, the same etcd and its
        data, so every client carries on with the kubeconfig and token it has. A
        graceful stop (SIGTERM) unless `crash` (SIGKILL). Returns once it is ready."""
        info = self.info()
        if info is None or not self.healthy(info):
            raise ClusterError("no healthy cluster whose kube-apiserver could be restarted")
        t0, stopped = time.monotonic(), datetime.now()
        old = next(p for p in info.processes if p.name == APISERVER)
        if crash:
            processes.kill(old)
        else:
            processes.stop(old)
        port = info.ports["apiserver"]
        if processes.wait_ports_closed([port]):
            raise ClusterError(f"port {port} still open after the kube-apiserver stopped")
        args = components.kube_apiserver(info.layout)
        if info.node == "real":
            args = realnode.apiserver_flags(args, self.state_dir / "pki")
        new = processes.start(APISERVER, info.bin_dir / APISERVER, args,
                              log_dir=self.state_dir / "logs")  # fmt: skip
        restarted = info.replacing(new)
        self.state_file.write_text(restarted.to_json())  # so that `down` stops this one
        with self._client(restarted) as client:
            _poll(
                "kube-apiserver /readyz after its restart",
                lambda: client.get("/readyz").status_code == 200,
                deadline=t0 + timeout,
                fail=lambda: _check_alive([new]),
            )
        with (self.state_dir / "logs" / OUTAGES_FILE).open("a") as record:
            record.write(Outage(stopped, datetime.now()).to_json() + "\n")
        self.log(f"kube-apiserver {'crashed' if crash else 'stopped'} and ready again "
                 f"after {time.monotonic() - t0:.1f}s")  # fmt: skip
        return restarted

    def _start_kwok(
        self,
        layout: components.Layout,
        admin_kubeconfig: Path,
        client: httpx.Client,
        launch: Callable[..., None],
        fail_if_dead: Callable[[], None],
        deadline: float,
    ) -> None:
        state = self.state_dir
        kwok_config = stages.write(
            state / "kwok.yaml",
            fallback_cidr=capacity.fallback_pod_cidr(self.pod_cidr),
            probe_readiness=self.probe_readiness,
        )
        launch(
            "kwok",
            components.kwok(layout, admin_kubeconfig, kwok_config),
            # kwok also merges ~/.kwok/kwok.yaml when present; point it elsewhere.
            env={**os.environ, "KWOK_WORKDIR": str(state / "kwok")},
        )
        for index, cidr in enumerate(capacity.node_pod_cidrs(self.pod_cidr, self.nodes)):
            response = client.post("/api/v1/nodes", json=_node(f"kwok-node-{index}", cidr))
            if response.status_code not in (201, 409):
                raise ClusterError(f"creating node: {response.status_code} {response.text}")
        _poll(
            "fake nodes Ready",
            lambda: _nodes_ready(client, self.nodes),
            deadline=deadline,
            fail=fail_if_dead,
        )

    # --- down ----------------------------------------------------------------------------

    def down(self) -> None:
        """Stop every recorded process and wait until their ports are closed."""
        info = self.info()
        host_record = self.state_dir / "node" / hostnet.HOST_FILE
        if info is None:
            # An `up` of a real node that died before recording its processes.
            if host_record.exists():
                realnode.stop_host(self.state_dir, binaries.bin_dir(), self.log)
            return
        # Clients first, etcd last, so nothing logs errors about a vanished backend.
        for proc in reversed(info.processes):
            processes.stop(proc)
        if info.node == "real" or host_record.exists():
            try:
                realnode.stop_host(self.state_dir, info.bin_dir, self.log)
            except hostnet.HostError as error:
                raise ClusterError(str(error)) from error
        still_open = processes.wait_ports_closed(list(info.ports.values()))
        self.state_file.unlink(missing_ok=True)
        if still_open:
            raise ClusterError(f"ports still open after down: {still_open}")

    # --- API access ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _client(self, info: ClusterInfo) -> Iterator[httpx.Client]:
        with self._client_for(info.server, certs.Pki.at(info.state_dir / "pki")) as client:
            yield client

    @staticmethod
    @contextlib.contextmanager
    def _client_for(server: str, pki: certs.Pki) -> Iterator[httpx.Client]:
        context = ssl.create_default_context(cafile=str(pki.ca.cert))
        context.load_cert_chain(str(pki.admin.cert), str(pki.admin.key))
        with httpx.Client(base_url=server, verify=context, timeout=5) as client:
            yield client


def _healthz(port: int) -> bool:
    # Served with the component's own self-signed certificate; only liveness is asked.
    response = httpx.get(f"https://127.0.0.1:{port}/healthz", verify=False, timeout=2)
    return response.status_code == 200


def _node(name: str, pod_cidr: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {stages.NODE_ANNOTATION: stages.NODE_ANNOTATION_VALUE},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]},
        "status": {
            "allocatable": {"cpu": "64", "memory": "256Gi", "pods": str(capacity.PODS_PER_NODE)},
            "capacity": {"cpu": "64", "memory": "256Gi", "pods": str(capacity.PODS_PER_NODE)},
        },
    }


def _nodes_ready(client: httpx.Client, count: int) -> bool:
    items = client.get("/api/v1/nodes").json().get("items", [])
    ready = [
        n
        for n in items
        if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in n.get("status", {}).get("conditions", [])
        )
    ]
    return len(ready) >= count
