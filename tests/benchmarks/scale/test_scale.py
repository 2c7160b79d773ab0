"""Scale: N ModelDeployments on one operator (issue 13), against a baseline of the same
number of plain Deployments and Services measured in the same run.

    PITSTOP_SCALE_N=100,300,1000 pytest tests/benchmarks/scale -m benchmark -s

For each N: the baseline's Deployments (2 replicas, the pod template Pitstop renders)
and two Services each are applied and become available, then their pod template
changes and they roll out again. Then
the operator (a fresh process on the chart's ServiceAccount) gets N ModelDeployments
(a prebuilt image, 2 replicas, one 5 s canary step) created at once, all become
Healthy; every one is kicked once with nothing to change; then every one gets a new
version and rolls out. Printed: times against the baseline's, the operator's API
writes per ModelDeployment (from its own /metrics, by verb and resource), writes of the
reconciles that changed nothing, peak RSS, CPU seconds, reconcile p50/p99, and how each
grows with N, and the API server's own count of requests (all clients) while each came
up and its p99 for writes (a reconcile that writes waits for them). Each phase's
namespace is deleted, and gone, before the next phase starts. KWOK's pods run nothing:
this measures the operator and the control plane, not model servers.

The reconcile p99 is printed by window (all coming up, all kicked idle, all rolling
out, then 20 rollouts arriving one a second with the rest idle), beside the API
server's write p99 in the same window and the operator's own wait for each kind of
write while all came up; `test_service_allocation` measures how fast this control plane
creates Services, with and without a cluster IP, by clients at once.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import operator_metrics
import pytest
from kubernetes import client as k8s
from kubernetes import watch as k8s_watch
from operator_metrics import WRITES
from pitstop.api.resource import ModelDeployment
from pitstop.devcluster import testing
from pitstop.devcluster.operator_process import OperatorProcess
from pitstop.rendering import children

pytestmark = pytest.mark.benchmark

Object = dict[str, Any]
API_WRITES = ("POST", "PUT", "PATCH", "APPLY", "DELETE")  # the API server's verbs
SIZES = [int(n) for n in os.environ.get("PITSTOP_SCALE_N", "100").split(",")]
PAUSE = 5.0
IMAGE = "registry.example/fraud:{}"
GROUP, VERSION, PLURAL = "pitstop.dev", "v1alpha1", "modeldeployments"


@dataclass
class Figures:
    n: int
    baseline_up: float = 0.0
    baseline_rollout: float = 0.0
    healthy: float = 0.0
    rollout: float = 0.0
    writes_to_healthy: dict[str, float] = field(default_factory=dict)
    writes_idle: float = 0.0
    reconciles_to_healthy: float = 0.0  # per ModelDeployment
    # The reconcile p99 and the API server's write p99 (every client's) in each window
    # of the run, by window (see `WINDOWS`): (reconcile, API server writes), in seconds.
    p99_by_window: dict[str, tuple[float, float]] = field(default_factory=dict)
    baseline_p99: dict[str, float] = field(default_factory=dict)  # its API server writes'
    # The operator's own writes while all came up, as it waited for them: (p50, p99) s.
    writes_up: dict[str, tuple[float, float]] = field(default_factory=dict)
    reconciles_rollout: float = 0.0  # per ModelDeployment, its rollout (pause included)
    rss_mb: float = 0.0
    cpu_seconds: float = 0.0
    p50: float = 0.0
    p99: float = 0.0
    errors: float = 0.0
    events_dropped: float = 0.0
    log_lines: float = 0.0  # the operator's log over the run, per ModelDeployment
    requests: dict[str, float] = field(default_factory=dict)
    # The whole machine's CPU seconds (busy, all cores) and busy share while each came up:
    baseline_up_cpu: tuple[float, float] = (0.0, 0.0)
    healthy_cpu: tuple[float, float] = (0.0, 0.0)
    baseline_up_top: str = ""  # the programs that spent most of it
    healthy_top: str = ""
    # Requests the API server itself counted while each came up, from every client
    # (controllers, scheduler, KWOK, this benchmark's polls, the operator), by
    # 'VERB resource':
    baseline_up_served: dict[str, float] = field(default_factory=dict)
    healthy_served: dict[str, float] = field(default_factory=dict)
    # The API server's p99 for writes (every client's), over each side's whole run: no
    # reconcile that writes can be faster than its writes.
    baseline_write_p99: float = 0.0
    write_p99: float = 0.0


RESULTS: list[Figures] = []


def parallel(work: Callable[[Any], object], items: Iterable[Any]) -> None:
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(work, items))


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores (/proc/stat)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks[:8]) - idle) / hz, sum(ticks[:8]) / hz


def process_cpu() -> dict[int, tuple[str, float]]:
    """Every process on the machine: its name and CPU seconds so far, by pid (a kernel
    worker renames itself after the work it does: keyed by name, one would be counted
    whole whenever its name changed)."""
    hz, found = os.sysconf("SC_CLK_TCK"), {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # ended meanwhile
        name, fields = text[text.index("(") + 1 : text.rindex(")")], text.rsplit(")", 1)[1].split()
        found[int(stat.parent.name)] = (name, (int(fields[11]) + int(fields[12])) / hz)
    return found


def top_cpu(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]],
            n: int = 5) -> str:  # fmt: skip
    """The programs that spent most CPU between the two readings, summed by name."""
    spent: dict[str, float] = {}
    for pid, (name, cpu) in after.items():
        program = name.split("/")[0] if name.startswith("kworker") else name
        spent[program] = spent.get(program, 0.0) + cpu - before.get(pid, (name, 0.0))[1]
    return ", ".join(f"{k} {v:.1f}" for k, v in sorted(spent.items(), key=lambda kv: -kv[1])[:n])


def cpu_since(start: tuple[float, float]) -> tuple[float, float]:
    """Busy CPU seconds since `start`, and the busy share of the machine's cores."""
    busy, total = machine_cpu()
    spent = busy - start[0]
    return spent, spent / max(total - start[1], 1e-9)


class Tally:
    """The objects of one kind in a namespace as a watch shows them, for counting those
    that are done. One watch, not a LIST per poll: at N=1,000 a LIST of every object
    twice a second (a few MB of JSON each, parsed here) cost the API server and this
    process about as much as the phase being measured, on the same two cores."""

    def __init__(self, list_call: Callable[..., Any], *args: str) -> None:
        self._objects: dict[str, Object] = {}
        self._lock = threading.Lock()
        self._watch = k8s_watch.Watch()
        self._stopped = False
        self.restarts: list[str] = []  # why the stream ended early, each time
        self._thread = threading.Thread(target=self._run, args=(list_call, args), daemon=True)
        self._thread.start()

    def _run(self, list_call: Callable[..., Any], args: tuple[str, ...]) -> None:
        while not self._stopped:
            try:
                self._follow(list_call, args)
            except Exception as error:  # an expired or broken stream: list and watch again
                if self._stopped:
                    return
                self.restarts.append(f"{type(error).__name__}: {error}")
                time.sleep(0.5)  # a pause between two attempts, not a synchronisation

    def _follow(self, list_call: Callable[..., Any], args: tuple[str, ...]) -> None:
        # A new Watch each time: one keeps the last resourceVersion it saw and resumes
        # from it, which after an expiry (410 Gone) fails again. A new stream starts with
        # an ADDED event for every object there.
        self._watch, fresh = k8s_watch.Watch(), True
        for event in self._watch.stream(list_call, *args, deserialize=False):
            obj: Object = event["object"]  # the plain JSON event: no models built
            with self._lock:
                if fresh:
                    self._objects.clear()
                    fresh = False
                if event["type"] == "DELETED":
                    self._objects.pop(obj["metadata"]["name"], None)
                elif event["type"] in ("ADDED", "MODIFIED"):
                    self._objects[obj["metadata"]["name"]] = obj

    def count(self, done: Callable[[Object], bool]) -> int:
        with self._lock:
            return sum(1 for obj in self._objects.values() if done(obj))

    def stop(self) -> None:
        """Stop counting; the stream ends at its next event, or when its client closes."""
        self._stopped = True
        self._watch.stop()
        if self.restarts:
            print(f"  (a watch was started again {len(self.restarts)}x: {self.restarts[-1]})")


def wait(what: str, probe: Callable[[], bool], timeout: float, interval: float = 0.1) -> float:
    started = time.monotonic()
    testing.DevCluster.wait(what, lambda: probe() or None, timeout=timeout, interval=interval)
    return time.monotonic() - started


def remove(cluster: testing.DevCluster, namespace: str) -> None:
    """Delete a phase's namespace and wait until it is gone. Deleting a thousand
    Deployments, their pods and Services keeps the controllers and the API server busy
    for a minute or more, and every controller's write into a terminating namespace is
    refused and retried: left to run in the background, that work was measured as the
    next phase's (the first Pitstop phase at N=100 saw 4 pod DELETEs and 11 EndpointSlice
    POSTs per ModelDeployment, all the baseline's clean-up).

    The namespace goes at once, not through `DevCluster.delete_namespace`: that deletes
    the ModelDeployments first, for an operator that would still be reconciling them
    (there is none here: it has stopped), and kubectl deletes them one request at a
    time, which for 1,000 outlasted its 120 s timeout."""
    cluster.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found")
    wait(f"namespace {namespace} gone", lambda: cluster.kubectl(
        "get", "namespace", namespace, "--ignore-not-found", "-o", "name").stdout == "",
        1800, interval=1.0)  # fmt: skip


@dataclass(frozen=True)
class Served:
    """The API server's own counts so far (its /metrics, every client): requests by
    'VERB resource[/subresource]' (WATCH and CONNECT left out: a watch is counted when
    it opens, not per event), and the latency histogram of its writes."""

    requests: dict[str, float]
    write_buckets: dict[float, float]  # upper bound (s) -> writes that took at most that


def served(cluster: testing.DevCluster) -> Served:
    by: dict[str, float] = {}
    buckets: dict[float, float] = {}
    for name, labels, value in operator_metrics.parse(
        cluster.kubectl("get", "--raw", "/metrics").stdout
    ):
        if name == "apiserver_request_duration_seconds_bucket":
            if labels["verb"] in API_WRITES:
                buckets[float(labels["le"])] = buckets.get(float(labels["le"]), 0.0) + value
        elif name == "apiserver_request_total" and labels.get("resource"):
            if labels["verb"] in ("WATCH", "CONNECT"):
                continue
            sub = f"/{labels['subresource']}" if labels.get("subresource") else ""
            key = f"{labels['verb']} {labels['resource']}{sub}"
            by[key] = by.get(key, 0.0) + value
    return Served(by, buckets)


def bound(buckets: Iterable[tuple[float, float]], q: float) -> float:
    """The smallest histogram bucket bound (le, cumulative count) holding a share `q`."""
    ordered = sorted(buckets)
    total = ordered[-1][1]
    return next((le for le, count in ordered if count >= q * total), math.inf)


def interpolated(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The q-quantile of what a histogram counted between two readings, interpolated
    linearly within its bucket as Prometheus's histogram_quantile does (a bucket's
    upper bound alone says only "at most 2.5 s" of a p99 of 1.1 s)."""
    counts = sorted((le, n - before.get(le, 0.0)) for le, n in after.items())
    rank, lower, below = q * counts[-1][1], 0.0, 0.0
    for le, n in counts:
        if n >= rank:
            if math.isinf(le):
                return lower  # past the last finite bound: that bound, as Prometheus
            return lower + (le - lower) * (rank - below) / max(n - below, 1e-9)
        lower, below = le, n
    return math.nan


def reconcile_buckets(url: str) -> dict[float, float]:
    return {float(labels["le"]): value for name, labels, value in operator_metrics.samples(url)
            if name == "pitstop_reconcile_duration_seconds_bucket"}  # fmt: skip


def request_buckets(url: str) -> dict[str, dict[float, float]]:
    """The operator's API request latency histogram, by 'VERB resource'."""
    found: dict[str, dict[float, float]] = {}
    for name, labels, value in operator_metrics.samples(url):
        if name == "pitstop_api_request_duration_seconds_bucket":
            key = f"{labels['verb']} {labels['resource']}"
            found.setdefault(key, {})[float(labels["le"])] = value
    return found


class Window:
    """The reconcile and API-server-write histograms at the start of a window."""

    def __init__(self, cluster: testing.DevCluster, url: str) -> None:
        self.cluster, self.url = cluster, url
        self.reconciles, self.api = reconcile_buckets(url), served(cluster).write_buckets
        self.requests = request_buckets(url)

    def p99(self) -> tuple[float, float]:
        """(reconcile p99, the API server's write p99) since the window began."""
        return (interpolated(self.reconciles, reconcile_buckets(self.url), 0.99),
                interpolated(self.api, served(self.cluster).write_buckets, 0.99))  # fmt: skip

    def writes(self) -> dict[str, tuple[float, float]]:
        """The operator's writes since the window began: (p50, p99) by 'VERB resource'."""
        found = {}
        for key, after in request_buckets(self.url).items():
            before = self.requests.get(key, {})
            if key.split()[0] in WRITES and max(after.values()) > max(before.values(), default=0):
                found[key] = (interpolated(before, after, 0.5), interpolated(before, after, 0.99))
        return found


WINDOWS = {
    "up": "all created at once, to Healthy",
    "idle": "all kicked, nothing to change",
    "rollout": "all rolled out at once",
    "paced": "one rollout a second, the rest idle",
}
PACED = 20  # rollouts in the paced window (at most N)


def write_p99(before: Served, after: Served) -> float:
    """The bound under which 99 % of the API server's writes between the two finished."""
    return bound(((le, n - before.write_buckets.get(le, 0.0))
                  for le, n in after.write_buckets.items()), 0.99)  # fmt: skip


def writes(url: str) -> dict[str, float]:
    """The operator's API writes so far, by 'VERB resource'."""
    return operator_metrics.requests(operator_metrics.samples(url), verbs=WRITES)


def quantile(url: str, q: float) -> float:
    return bound(reconcile_buckets(url).items(), q)


def posted(url: str) -> None:
    """Wait until the operator has posted every Event it queued (it posts them off the
    reconcile's path): they count with the writes that caused them."""
    wait("the operator's Events posted", lambda: one(url, "pitstop_events_waiting") == 0, 300)


def one(url: str, name: str, **labels: str) -> float:
    return operator_metrics.total(operator_metrics.samples(url), name, **labels)


def minus(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: a.get(k, 0.0) - b.get(k, 0.0) for k in a if a.get(k, 0.0) - b.get(k, 0.0) > 0}


def deployment(name: str, version: str) -> dict[str, Any]:
    """A plain Deployment with the pod template Pitstop renders for the same
    ModelDeployment (probes, volumes, security context, env: what every pod write and
    watch event of the baseline carries, as Pitstop's do), selected by its own label."""
    md = ModelDeployment.model_validate(
        {**model_deployment(name, version), "metadata": {"name": name, "namespace": "baseline"}}
    )
    template = children.pod_template(md, IMAGE.format(version))
    template["metadata"]["labels"]["app"] = name
    template["metadata"]["annotations"]["version"] = version
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}}, "template": template},
    }  # fmt: skip


def service(name: str, target: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": target}, "ports": [{"port": 80}]}}  # fmt: skip


def model_deployment(name: str, version: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelDeployment", "metadata": {"name": name},
        "spec": {
            "model": {"name": "fraud", "version": version}, "image": IMAGE.format(version),
            "serving": {"replicas": 2},
            "strategy": {"type": "Canary",
                         "canary": {"steps": [{"weight": 50, "pause": f"{PAUSE:g}s"}]}},
        },
    }  # fmt: skip


def baseline(cluster: testing.DevCluster, n: int, figures: Figures) -> None:
    ns = f"base-{uuid.uuid4().hex[:6]}"
    cluster.create_namespace(ns, pod_security="restricted")  # as Pitstop's
    api = cluster.api_client()
    apps, core = k8s.AppsV1Api(api), k8s.CoreV1Api(api)
    names = [f"m{i:04d}" for i in range(n)]

    def available(version: str) -> Callable[[Object], bool]:
        def done(d: Object) -> bool:
            status, meta = d.get("status") or {}, d["metadata"]
            return (status.get("observedGeneration") == meta.get("generation")
                    and status.get("updatedReplicas") == 2
                    and status.get("availableReplicas") == 2 and status.get("replicas") == 2
                    and d["spec"]["template"]["metadata"]["annotations"]["version"] == version)  # fmt: skip

        return done

    seen = Tally(apps.list_namespaced_deployment, ns)
    asked = served(cluster)
    window = asked.write_buckets
    started, cpu, programs = time.monotonic(), machine_cpu(), process_cpu()
    parallel(lambda m: (apps.create_namespaced_deployment(ns, deployment(m, "1")),
                        core.create_namespaced_service(ns, service(m, m)),
                        core.create_namespaced_service(ns, service(f"{m}-entry", m))), names)  # fmt: skip
    wait("the baseline available", lambda: seen.count(available("1")) == n, 900)
    figures.baseline_up = time.monotonic() - started
    figures.baseline_up_cpu = cpu_since(cpu)
    figures.baseline_up_top = top_cpu(programs, process_cpu())
    now = served(cluster)
    figures.baseline_up_served = minus(now.requests, asked.requests)
    figures.baseline_p99["up"] = interpolated(window, now.write_buckets, 0.99)
    started, window = time.monotonic(), now.write_buckets
    parallel(lambda m: apps.patch_namespaced_deployment(m, ns, deployment(m, "2")), names)
    wait("the baseline rolled out", lambda: seen.count(available("2")) == n, 900)
    seen.stop()
    now = served(cluster)
    figures.baseline_p99["rollout"] = interpolated(window, now.write_buckets, 0.99)
    figures.baseline_write_p99 = write_p99(asked, now)
    figures.baseline_rollout = time.monotonic() - started
    api.close()  # type: ignore[no-untyped-call]
    remove(cluster, ns)


@pytest.mark.timeout(3600)  # N = 1,000: baseline, creation and rollout take minutes each
@pytest.mark.parametrize("n", SIZES)
def test_scale(
    n: int, cluster: testing.DevCluster, crd: str, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    figures = Figures(n)
    baseline(cluster, n, figures)

    ns = f"scale-{uuid.uuid4().hex[:6]}"
    cluster.create_namespace(ns, pod_security="restricted")
    # Cold, as a pod starts it: its RSS and CPU seconds (read from /proc) then include
    # its imports, which a warm fork would have done in the fork server.
    operator = OperatorProcess(operator_kubeconfig, tmp_path / "operator.log", warm=False)
    operator.start()
    url = operator.metrics_url
    api = cluster.api_client()
    custom = k8s.CustomObjectsApi(api)
    names = [f"m{i:04d}" for i in range(n)]

    def healthy(version: str) -> Callable[[Object], bool]:
        def done(o: Object) -> bool:
            status = o.get("status") or {}
            return status.get("phase") == "Healthy" and (
                (status.get("stable") or {}).get("version") == version
            )  # fmt: skip

        return done

    seen = Tally(custom.list_namespaced_custom_object, GROUP, VERSION, ns, PLURAL)
    try:
        before = writes(url)
        passes = one(url, "pitstop_reconciles_total")
        started, cpu, programs = time.monotonic(), machine_cpu(), process_cpu()
        asked, window = served(cluster), Window(cluster, url)
        parallel(lambda m: custom.create_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, model_deployment(m, "1")), names)  # fmt: skip
        wait("every ModelDeployment Healthy", lambda: seen.count(healthy("1")) == n, 1800)
        figures.healthy = time.monotonic() - started
        figures.healthy_cpu = cpu_since(cpu)
        figures.healthy_top = top_cpu(programs, process_cpu())
        figures.healthy_served = minus(served(cluster).requests, asked.requests)
        figures.p99_by_window["up"], figures.writes_up = window.p99(), window.writes()
        posted(url)
        settled = writes(url)
        figures.writes_to_healthy = {k: v / n for k, v in minus(settled, before).items()}
        figures.reconciles_to_healthy = (one(url, "pitstop_reconciles_total") - passes) / n

        # Kick every one with nothing to change (an annotation: no new generation).
        reconciles = one(url, "pitstop_reconciles_total")
        quiet, window = writes(url), Window(cluster, url)
        parallel(lambda m: custom.patch_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, m,
            {"metadata": {"annotations": {"bench.pitstop.dev/kick": "1"}}}), names)  # fmt: skip
        wait("a reconcile of each kicked one",
             lambda: one(url, "pitstop_reconciles_total") >= reconciles + n, 600)  # fmt: skip
        figures.p99_by_window["idle"] = window.p99()
        posted(url)
        figures.writes_idle = sum(minus(writes(url), quiet).values())

        started, passes = time.monotonic(), one(url, "pitstop_reconciles_total")
        window = Window(cluster, url)
        parallel(lambda m: custom.patch_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, m,
            {"spec": {"model": {"version": "2"}, "image": IMAGE.format(2)}}), names)  # fmt: skip
        wait("every rollout finished", lambda: seen.count(healthy("2")) == n, 1800)
        figures.rollout = time.monotonic() - started
        figures.reconciles_rollout = (one(url, "pitstop_reconciles_total") - passes) / n
        figures.p99_by_window["rollout"] = window.p99()

        figures.write_p99 = write_p99(asked, served(cluster))

        assert operator.pid is not None
        status = Path(f"/proc/{operator.pid}/status").read_text()
        figures.rss_mb = int(status.split("VmHWM:")[1].split()[0]) / 1024
        fields = Path(f"/proc/{operator.pid}/stat").read_text().rsplit(")", 1)[1].split()
        figures.cpu_seconds = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        figures.p50, figures.p99 = quantile(url, 0.5), quantile(url, 0.99)
        figures.requests = operator_metrics.requests(operator_metrics.samples(url))
        with operator.log_path.open("rb") as logged:
            figures.log_lines = sum(1 for _ in logged) / n

        # After the figures above, the same operator, holding all N, with rollouts arriving
        # one a second: what a reconcile takes when the benchmark itself does not
        # saturate the control plane.
        paced, window = names[: min(PACED, n)], Window(cluster, url)
        begun = time.monotonic()
        for i, m in enumerate(paced):
            time.sleep(max(0.0, begun + i - time.monotonic()))  # the arrival rate, 1/s
            custom.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, m,
                {"spec": {"model": {"version": "3"}, "image": IMAGE.format(3)}})  # fmt: skip
        wait("the paced rollouts finished",
             lambda: seen.count(healthy("3")) == len(paced), 600)  # fmt: skip
        figures.p99_by_window["paced"] = window.p99()
        figures.errors = one(url, "pitstop_reconciles_total", result="error")
        figures.events_dropped = one(url, "pitstop_events_dropped_total")
        RESULTS.append(figures)
        report()
    finally:
        seen.stop()
        api.close()  # type: ignore[no-untyped-call]
        operator.stop()
        remove(cluster, ns)  # before the next N's baseline starts
    assert figures.errors == 0, f"{figures.errors:.0f} reconciles failed; see {operator.log_path}"
    assert figures.events_dropped == 0, "the operator dropped Events: its outbox fell behind"


def report() -> None:
    print("\nScale (KWOK pods; controller-manager and scheduler at raised client limits)")
    print(
        "     N | baseline up  rollout |  Pitstop Healthy (x)   rollout beyond pause (x) | "
        "writes/MD to Healthy  idle writes | RSS MB  CPU s | reconcile p50  p99"
    )
    for f in RESULTS:
        print(
            f"{f.n:6d} | {f.baseline_up:9.1f}s {f.baseline_rollout:7.1f}s | "
            f"{f.healthy:8.1f}s ({f.healthy / f.baseline_up:4.2f}x) "
            f"{f.rollout - PAUSE:10.1f}s ({(f.rollout - PAUSE) / f.baseline_rollout:4.2f}x) | "
            f"{sum(f.writes_to_healthy.values()):12.1f} {f.writes_idle:12.0f} | "
            f"{f.rss_mb:6.0f} {f.cpu_seconds:6.1f} | {f.p50:8.3f}s {f.p99:6.3f}s"
        )
    for f in RESULTS:
        (base_cpu, base_busy), (cpu, busy) = f.baseline_up_cpu, f.healthy_cpu
        print(
            f"  the machine while N={f.n} came up (all processes, {os.cpu_count()} cores): "
            f"baseline {base_cpu:.1f} CPU s ({base_busy:.0%} busy), Pitstop {cpu:.1f} CPU s "
            f"({busy:.0%} busy; {cpu / max(base_cpu, 1e-9):.2f}x the baseline's work)\n"
            f"    most CPU s: baseline {f.baseline_up_top}; Pitstop {f.healthy_top}"
        )
    print("  reconciles per ModelDeployment to Healthy · over its rollout: "
          + ", ".join(f"{f.reconciles_to_healthy:.1f} · {f.reconciles_rollout:.1f} at N={f.n}"
                      for f in RESULTS))  # fmt: skip
    for f in RESULTS:
        print(f"  p99 by window at N={f.n} (interpolated in the histograms' buckets): "
              + "; ".join(f"{WINDOWS[w]}: reconcile {r:.2f} s, API server writes {a:.2f} s"
                          for w, (r, a) in f.p99_by_window.items())
              + "; the baseline's API server writes: "
              + ", ".join(f"{WINDOWS[w].split(',')[0]} {a:.2f} s"
                          for w, a in f.baseline_p99.items()))  # fmt: skip
    for f in RESULTS:
        print(
            f"  the operator's writes while N={f.n} came up, as it waited for them (p50 · p99): "
            + ", ".join(f"{k} {a:.2f} · {b:.2f} s" for k, (a, b) in sorted(f.writes_up.items()))
        )
    print("  Events dropped (queue full): "
          + ", ".join(f"{f.events_dropped:.0f} at N={f.n}" for f in RESULTS))  # fmt: skip
    print("  operator log lines per ModelDeployment over the run: "
          + ", ".join(f"{f.log_lines:.1f} at N={f.n}" for f in RESULTS))  # fmt: skip
    last = RESULTS[-1]
    print(
        f"  writes per ModelDeployment to Healthy at N={last.n}: "
        + json.dumps({k: round(v, 2) for k, v in sorted(last.writes_to_healthy.items())})
    )
    print(
        f"  the operator's API requests over the run at N={last.n}, by verb and resource: "
        + json.dumps({k: int(v) for k, v in sorted(last.requests.items())})
    )
    for f in RESULTS:
        print(
            f"  the API server's own count of requests while N={f.n} came up (all clients; "
            f"per object): baseline {sum(f.baseline_up_served.values()) / f.n:.1f}, "
            f"Pitstop {sum(f.healthy_served.values()) / f.n:.1f}; the API server's p99 for "
            f"writes over the run: baseline {f.baseline_write_p99:g} s, Pitstop {f.write_p99:g} s"
        )
    for label, found in (("baseline", last.baseline_up_served),
                         ("Pitstop", last.healthy_served)):  # fmt: skip
        top = sorted(found.items(), key=lambda kv: -kv[1])[:12]
        print(
            f"    {label} at N={last.n}, per object, by verb and resource: "
            + json.dumps({k: round(v / last.n, 2) for k, v in top})
        )
    if len(RESULTS) > 1:
        a, b = RESULTS[0], RESULTS[-1]
        growth = math.log(b.n / a.n)
        for label, x, y in (("time to Healthy", a.healthy, b.healthy),
                            ("rollout", a.rollout - PAUSE, b.rollout - PAUSE),
                            ("RSS", a.rss_mb, b.rss_mb), ("CPU", a.cpu_seconds, b.cpu_seconds)):  # fmt: skip
            k = math.log(y / x) / growth if x > 0 and y > 0 else float("nan")
            print(f"  {label} grows as N^{k:.2f}; at 10,000: ~{y * (10_000 / b.n) ** k:,.0f}")
    print(
        "  targets: Healthy <= 1.2x baseline; rollouts <= pause + 1.5x baseline; <= 8 writes "
        "per MD to Healthy; 0 idle writes; RSS < 300 MB; reconcile p99 < 0.5 s; no errors"
    )


def test_service_allocation(cluster: testing.DevCluster) -> None:
    """What creating Services costs on this control plane: each ClusterIP Service takes
    an address from the API server's allocator, which allocates one at a time (an
    IPAddress object created under one lock), so ClusterIP Services are created no
    faster with more clients, only each waits longer; headless Services (no address)
    are not held. Both sides of the scale benchmark create two ClusterIP Services per
    object, and a reconcile that creates them waits there (its p99 while a fleet comes up)."""
    ns = f"svc-{uuid.uuid4().hex[:6]}"
    cluster.create_namespace(ns, pod_security="restricted")
    api = cluster.api_client()
    core = k8s.CoreV1Api(api)
    count = 200
    rates: dict[tuple[int, bool], float] = {}
    try:
        for clients in (1, 8, 16):
            for headless in (False, True):

                def create(i: int, clients: int = clients, headless: bool = headless) -> None:
                    body = service(f"c{clients}-{'h' if headless else 'ip'}-{i}", "none")
                    if headless:
                        body["spec"]["clusterIP"] = "None"
                    core.create_namespaced_service(ns, body)

                started = time.monotonic()
                with ThreadPoolExecutor(clients) as pool:
                    list(pool.map(create, range(count)))
                rates[clients, headless] = count / (time.monotonic() - started)
        print("\nServices created per second, by clients at once (200 each): "
              + "; ".join(f"{c}: ClusterIP {rates[c, False]:.0f}/s, headless {rates[c, True]:.0f}/s"
                          for c in (1, 8, 16)))  # fmt: skip
        made = core.list_namespaced_service(ns).items
        assert len(made) == 6 * count
        assert sum(1 for s in made if s.spec.cluster_ip != "None") == 3 * count  # all allocated
    finally:
        api.close()  # type: ignore[no-untyped-call]
        remove(cluster, ns)
