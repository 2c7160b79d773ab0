"""The kubelet's part the local control plane lacks: running each pod's model server.

KWOK marks pods Running and gives them a loopback IP (127.x.y.z); this emulator polls
the namespace's pods through the API and, for every Running pod with an IP and no
deletionTimestamp, starts a real `bentoml serve` of the bento the pod's image holds
(a folder with its models, as at the image's $BENTO_PATH), bound to
`<podIP>:<containerPort>`. When the pod goes or starts terminating it runs the
container's preStop sleep (the server keeps answering, as the gateway may still route
to it for a moment) and then stops the server. What else a kubelet does for these pods,
it does from the pod spec too:

- the container's env (literal values) over the image's own env (`Image.env`);
- configMap and secret volumes are written to a per-pod folder and rewritten (atomically,
  so the template's mtime check sees one change) whenever the object changes, and each
  emptyDir volume gets an empty per-pod folder of its own; env values that are paths
  under a volumeMount are pointed at that folder (so BENTOML_HOME and TMPDIR, which
  the pod spec puts on emptyDirs, are the pod's own), and any other container path at
  an empty per-pod "rootfs", so a server never reads the host's /etc;
- the readiness probe: the cluster runs with `probe_readiness` (KWOK leaves pods with
  a readinessProbe NotReady), and the emulator sets the pod's Ready condition once its
  server answers the probe's path with 200, and clears it if the server exits; so
  Deployments, the operator (smoke test, metrics) and the gateway see what a kubelet
  would report.

There is no cluster DNS or kube-proxy on the host, so in mounted ConfigMap content
`<service>.<namespace>.svc[:port]` is resolved the way kube-proxy would pin one
connection: to one ready pod the Service selects (spread by the reading pod's name) and
the container port its targetPort names, re-resolved as pods come and go. An env value
naming a *headless* Service (the model's feedback peers) becomes a file listing every
ready pod it selects, kept current: what its DNS name would resolve to.

Loopback only, bounded (`max_servers`), and `stop()` ends every server it started.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import local_http
from kubernetes import client as k8s_client
from pitstop.devcluster import testing
from serving_harness import Server

from harness.listing import Listing

log = logging.getLogger(__name__)

Object = dict[str, Any]
MODEL_POD = "pitstop.dev/model-deployment"  # the label every model server pod carries
POLL = 0.2  # seconds between two reads of the API (not a synchronisation: a period)
SERVICE_HOST = re.compile(
    r"\b(?P<service>[a-z0-9]([-a-z0-9]*[a-z0-9])?)\.(?P<namespace>[a-z0-9]([-a-z0-9]*[a-z0-9])?)"
    r"\.svc(?:\.cluster\.local)?(?::(?P<port>\d+))?"
)


@dataclasses.dataclass(frozen=True)
class Image:
    """What an image holds, as far as the emulator needs: the bento and its ENV."""

    bento: str  # the bento folder with its models (or a tag of the host's store)
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class PodServer:
    """One pod's model server, as the emulator runs it."""

    name: str
    uid: str
    ip: str
    port: int
    labels: dict[str, str]
    container: str
    folder: Path
    server: Server
    mounts: dict[str, Path]  # container mountPath -> host folder
    volumes: list[Object]
    started: float
    peers: dict[Path, str] = dataclasses.field(default_factory=dict)
    """Files standing in for headless Services' DNS (path -> Service name)."""
    ready_at: float | None = None
    exited: int | None = None
    pre_stop: float = 0.0
    """Seconds of the container's preStop sleep, served through before stopping."""
    cut_short: threading.Event = dataclasses.field(default_factory=threading.Event)
    """Ends the preStop sleep early: the emulator stops, or a new pod has its address."""

    @property
    def url(self) -> str:
        return str(self.server.url)


def is_ready(pod: Object) -> bool:
    """Running, not terminating, and its Ready condition is True (an endpoint would be)."""
    conditions = (pod.get("status") or {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return ready and is_running(pod)


def is_running(pod: Object) -> bool:
    meta, status = pod["metadata"], pod.get("status") or {}
    return (
        status.get("phase") == "Running"
        and bool(status.get("podIP"))
        and meta.get("deletionTimestamp") is None
    )


def pre_stop_seconds(container: Object) -> float:
    sleep = ((container.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}
    return float(sleep.get("seconds", 0))


def selects(selector: Mapping[str, str], pod: Object) -> bool:
    labels = pod["metadata"].get("labels") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def container_port(pod: Object, target: object) -> int | None:
    """The container port a Service's targetPort (a number or a port name) means."""
    if isinstance(target, int):
        return target
    for container in pod["spec"]["containers"]:
        for port in container.get("ports") or []:
            if port.get("name") == target or str(port.get("containerPort")) == str(target):
                return int(port["containerPort"])
    return None


class Kubelet:
    """Model servers for the pods of one namespace; a context manager."""

    def __init__(
        self,
        cluster: testing.DevCluster,
        namespace: str,
        images: Mapping[str, Image],
        folder: Path,
        *,
        host_env: Mapping[str, str] | None = None,
        max_servers: int = 12,
        listing: Listing | None = None,
    ) -> None:
        self.cluster, self.namespace = cluster, namespace
        # The namespace's pods and Services, shared with the gateways given the same.
        self.listing = listing or Listing(cluster, namespace)
        self.images = dict(images)
        self.folder = folder
        self.host_env = dict(host_env or {})
        self.max_servers = max_servers
        self.pods: dict[str, PodServer] = {}  # by uid; only the loop thread mutates it
        self.problems: list[str] = []  # each problem once, in the order seen
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kubelet", daemon=True)
        self._stopper = ThreadPoolExecutor(16, thread_name_prefix="kubelet-stop")
        self._api: k8s_client.ApiClient | None = None
        self._pods_seen: list[Object] = []
        self._services: dict[str, Object] = {}
        self._objects: dict[str, Object | None] = {}  # read once per sync
        self._refused: set[str] = set()  # pod uids this emulator cannot run
        self._draining: dict[str, tuple[PodServer, Future[None]]] = {}  # by uid, in preStop

    # --- what tests and the gateway ask -------------------------------------------

    def servers(self, labels: Mapping[str, str] | None = None) -> list[PodServer]:
        """Running servers whose pods carry `labels`."""
        wanted = dict(labels or {})
        return [
            p
            for p in list(self.pods.values())
            if p.exited is None and all(p.labels.get(k) == v for k, v in wanted.items())
        ]

    # --- lifecycle ------------------------------------------------------------------

    def __enter__(self) -> Kubelet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._api = self.cluster.api_client()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        for gone, _ in self._draining.values():
            gone.cut_short.set()
        for uid in list(self.pods):
            self._stopper.submit(self.pods.pop(uid).server.stop)
        self._stopper.shutdown(wait=True)
        if self._api is not None:
            self._api.close()  # type: ignore[no-untyped-call]

    # --- the loop -------------------------------------------------------------------

    def _core(self) -> k8s_client.CoreV1Api:
        assert self._api is not None
        return k8s_client.CoreV1Api(self._api)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._sync()
            except Exception as error:  # keep running; a test reads `problems`
                log.exception("kubelet sync failed")
                self._problem(f"sync failed: {error!r}")
            self._stop.wait(POLL)

    def _sync(self) -> None:
        seen = self.listing.read(max_age=POLL / 2)
        pods, self._services = seen.pods, seen.services
        self._pods_seen = pods
        self._objects = {}
        # Model servers only: other pods (a retraining Job's) are not this emulator's.
        running = {p["metadata"]["uid"]: p for p in pods if is_running(p)
                   and MODEL_POD in (p["metadata"].get("labels") or {})}  # fmt: skip
        for uid in [uid for uid in self.pods if uid not in running]:
            gone = self.pods.pop(uid)
            log.info("pod %s went: stopping its server after %gs", gone.name, gone.pre_stop)
            self._draining[gone.uid] = (gone, self._stopper.submit(self._drain, gone))
        for uid in [uid for uid, (_, done) in self._draining.items() if done.done()]:
            del self._draining[uid]
        for uid, pod in running.items():
            if uid not in self.pods and uid not in self._refused:
                self._launch(pod)
        for served in list(self.pods.values()):
            self._write_volumes(served)
            self._write_peers(served)
            self._probe(served)

    def _drain(self, gone: PodServer) -> None:
        """The kubelet's preStop sleep, then the stop."""
        gone.cut_short.wait(gone.pre_stop)
        gone.server.stop()

    def _free(self, ip: str, port: int) -> None:
        """A real pod keeps its IP until its sandbox goes; KWOK hands a deleted pod's IP
        to the next pod at once. The draining server on it stops first: the gateway has
        already left the old pod, so what reaches that address is for the new one."""
        for gone, done in list(self._draining.values()):
            if (gone.ip, gone.port) == (ip, port):
                gone.cut_short.set()
                done.result(timeout=60)

    def _problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    def _refuse(self, pod: Object, why: str) -> None:
        self._refused.add(pod["metadata"]["uid"])
        self._problem(f"pod {pod['metadata']['name']}: {why}")

    def _launch(self, pod: Object) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        container = spec["containers"][0]
        image = self.images.get(container["image"])
        if image is None:
            return self._refuse(pod, f"no bento for image {container['image']!r}")
        if len(self.pods) >= self.max_servers:
            return self._refuse(pod, f"more than {self.max_servers} servers")
        ports = [p["containerPort"] for p in container.get("ports") or []]
        if not ports:
            return self._refuse(pod, "the container declares no port")
        folder = self.folder / meta["name"]
        mounts = {
            m["mountPath"].rstrip("/"): folder / "volumes" / m["name"]
            for m in container.get("volumeMounts") or []
        }
        env: dict[str, str] = dict(image.env)
        for item in container.get("env") or []:
            if "value" not in item:
                return self._refuse(pod, f"env {item['name']} is not a literal value")
            env[item["name"]] = item["value"]
        peers: dict[Path, str] = {}
        for key, value in env.items():
            named = SERVICE_HOST.fullmatch(value)
            if named is None or named["namespace"] != self.namespace:
                continue
            service = self._services.get(named["service"])
            if service is None:
                return None  # not seen yet: launched at a later sync, as DNS would wait
            if service["spec"].get("clusterIP") == "None":
                # Headless: DNS would answer every ready pod; the server reads a file
                # this emulator keeps listing them (see `_write_peers`).
                path = folder / "peers" / named["service"]
                peers[path] = named["service"]
                env[key] = str(path)
        env = {k: v if Path(v) in peers else self._host_path(v, mounts, folder)
               for k, v in env.items()}  # fmt: skip
        served = PodServer(
            name=meta["name"], uid=meta["uid"], ip=pod["status"]["podIP"], port=ports[0],
            labels=dict(meta.get("labels") or {}), container=container["name"], folder=folder, server=None,  # type: ignore[arg-type]
            mounts=mounts, volumes=spec.get("volumes") or [], started=time.monotonic(),
            peers=peers, pre_stop=pre_stop_seconds(container),
        )  # fmt: skip
        (folder / "rootfs").mkdir(parents=True, exist_ok=True)
        for volume in served.volumes:
            if "emptyDir" in volume:
                (folder / "volumes" / volume["name"]).mkdir(parents=True, exist_ok=True)
        self._write_volumes(served)
        self._write_peers(served)
        self._free(served.ip, served.port)
        served.server = Server(
            image.bento,
            {**self.host_env, **env},
            folder / "server.log",
            cwd=folder,
            host=served.ip,
            port=served.port,
        )
        self.pods[served.uid] = served
        log.info("pod %s: serving %s on %s", served.name, image.bento, served.url)
        return None

    @staticmethod
    def _host_path(value: str, mounts: Mapping[str, Path], folder: Path) -> str:
        if not value.startswith("/"):
            return value
        for mount, host in sorted(mounts.items(), key=lambda m: -len(m[0])):
            if value == mount or value.startswith(mount + "/"):
                return str(host) + value[len(mount) :]
        return str(folder / "rootfs") + value

    def _volume_files(self, served: PodServer, volume: Object) -> dict[str, bytes] | None:
        decode: Callable[[str], bytes]
        if "configMap" in volume:
            source, kind = volume["configMap"], "configmap"
            name, decode = source["name"], str.encode
        elif "secret" in volume:
            source, kind = volume["secret"], "secret"
            name, decode = source["secretName"], base64.b64decode
        else:
            return None
        path = f"{kind}/{name}"
        if path not in self._objects:
            self._objects[path] = self.cluster.get(kind, name, namespace=self.namespace)
        found = self._objects[path]
        if found is None:
            # A kubelet would keep a pod with a missing non-optional volume pending.
            if not source.get("optional"):
                self._problem(f"pod {served.name}: volume {volume['name']} is missing")
            return {}
        data = found.get("data") or {}
        files = {key: decode(value) for key, value in data.items()}
        if "configMap" in volume:
            files = {k: self._resolve_services(v, served) for k, v in files.items()}
        return files

    def _write_volumes(self, served: PodServer) -> None:
        for volume in served.volumes:
            files = self._volume_files(served, volume)
            if files is None:
                continue
            target = served.folder / "volumes" / volume["name"]
            target.mkdir(parents=True, exist_ok=True)
            for old in target.iterdir():
                if old.name not in files and not old.name.startswith("."):
                    old.unlink()
            for key, content in files.items():
                path = target / key
                if path.exists() and path.read_bytes() == content:
                    continue
                temporary = target / f".{key}.tmp"
                temporary.write_bytes(content)
                temporary.replace(path)

    def _write_peers(self, served: PodServer) -> None:
        """Each headless Service a pod's env names: every ready pod it selects, as
        `ip:port` lines, rewritten (atomically) when they change."""
        for path, name in served.peers.items():
            service = self._services.get(name)
            if service is None:
                continue
            selector = service["spec"].get("selector") or {}
            target = (service["spec"].get("ports") or [{}])[0].get("targetPort")
            lines = sorted(
                f"{p['status']['podIP']}:{container_port(p, target)}"
                for p in self._pods_seen
                if is_ready(p) and selects(selector, p)
            )
            content = "".join(line + "\n" for line in lines)
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists() and path.read_text() == content:
                continue
            temporary = path.with_name(f".{path.name}.tmp")
            temporary.write_text(content)
            temporary.replace(path)

    def _resolve_services(self, content: bytes, served: PodServer) -> bytes:
        def address(match: re.Match[str]) -> str:
            if match["namespace"] != self.namespace:
                return match[0]
            service = self._services.get(match["service"])
            if service is None:
                return match[0]
            wanted = int(match["port"] or 80)
            ports = service["spec"].get("ports") or []
            port = next((p for p in ports if p["port"] == wanted), None)
            if port is None:
                return match[0]
            selector = service["spec"].get("selector") or {}
            pods = sorted(
                (p for p in self._pods_seen if is_running(p) and selects(selector, p)),
                key=lambda p: p["metadata"]["name"],
            )
            ready = [p for p in pods if is_ready(p)] or pods
            if not ready:
                return match[0]
            spread = int(hashlib.sha256(served.name.encode()).hexdigest(), 16) % len(ready)
            pod = ready[spread]
            target = container_port(pod, port.get("targetPort", port["port"]))
            return f"{pod['status']['podIP']}:{target}"

        return SERVICE_HOST.sub(address, content.decode()).encode()

    def _probe(self, served: PodServer) -> None:
        if served.exited is not None:
            return
        code = served.server.process.poll()
        if code is not None:
            served.exited = code
            self._report_ready(served, False)
            tail = served.server.log.read_text(errors="replace")[-2000:]
            self._problem(f"pod {served.name}: server exited with {code}: {tail}")
            return
        if served.ready_at is not None:
            return
        try:
            answer = local_http.get(f"{served.url}/readyz", timeout=0.5)
        except httpx.HTTPError:
            return
        if answer.status_code == 200:
            self._report_ready(served, True)
            served.ready_at = time.monotonic()
            log.info("pod %s ready after %.1fs", served.name, served.ready_at - served.started)

    def _report_ready(self, served: PodServer, ready: bool) -> None:
        value = "True" if ready else "False"
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "status": {
                "conditions": [
                    {"type": kind, "status": value, "lastTransitionTime": now}
                    for kind in ("Ready", "ContainersReady")
                ],
                "containerStatuses": [{"name": served.container, "ready": ready}],
            }
        }
        try:
            self._core().patch_namespaced_pod_status(served.name, self.namespace, body)
        except k8s_client.ApiException as error:
            if error.status != 404:  # a pod deleted meanwhile needs no status
                raise
