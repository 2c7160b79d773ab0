"""What a rollout did, read from every stored version of its objects: what each version
of a route, a selector or a mirror gave the candidate, the invariants over that
history, and how the end differs from where an undisturbed rollout ends.

Pure: it reads versions (`etcd_history.Version`) and objects, never the cluster.

What users get of the candidate is an *exposure*: (percent of user traffic, percent
of requests mirrored). From a Gateway API HTTPRoute, its first rule's backendRefs
weights and RequestMirror filter; from an Istio VirtualService, its first http route's
weights and mirror; with the `service` provider, the entry Service's selector (the
stable's revision: 0, the candidate's: 100, no revision: the candidate's share of the
ModelDeployment's Deployments' replicas, as kube-proxy balances over their pods) and
the mirror ConfigMap.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import etcd_history

Object = dict[str, Any]
Exposure = tuple[int, int]  # (percent of user traffic, percent mirrored) to the candidate
Latest = dict[tuple[str, str], Object]  # (kind, name) -> the object as it is at a point
REVISION = "pitstop.dev/revision"
VERSION = "pitstop.dev/model-version"
TRAFFIC_KINDS = ("HTTPRoute", "VirtualService", "Service", "ConfigMap")
NEVER = 1 << 62  # a revision after every other


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One ModelDeployment's rollout from v1 to v2, and the outcome its metric decides."""

    strategy: str  # BlueGreen | Canary | Shadow
    provider: str  # service | gateway-api | istio
    outcome: str  # Promoted | RolledBack
    replicas: int
    steps: tuple[int, ...] = ()  # Canary: the steps' weights
    mirror: int = 0  # Shadow: the percent mirrored

    @property
    def name(self) -> str:
        return f"{self.strategy.lower()}-{self.provider}"

    @property
    def route_kind(self) -> str | None:
        return {"gateway-api": "HTTPRoute", "istio": "VirtualService"}.get(self.provider)

    def allowed(self) -> set[Exposure]:
        """What users may get of the candidate during the rollout, step by step."""
        if self.strategy == "Canary":
            weights = [self._by_replicas(w) if self.provider == "service" else w
                       for w in self.steps]  # fmt: skip
            return {(0, 0), *((w, 0) for w in weights), (100, 0)}
        if self.strategy == "BlueGreen":
            return {(0, 0), (100, 0)}
        # Promoted, the candidate serves everyone; the mirror may go a moment later.
        return {(0, 0), (0, self.mirror), (100, 0), (100, self.mirror)}

    def _by_replicas(self, weight: int) -> int:
        """A weight as the `service` provider makes it: the candidate's share of pods
        (20% of 2 stable pods is 1 candidate pod beside them, 33%)."""
        pods = max(1, round(self.replicas * weight / (100 - weight)))
        return round(100 * pods / (self.replicas + pods))


def rank(exposure: Exposure) -> tuple[int, int]:
    """Forward is up: the weight first, then the mirror; at 100% the candidate serves
    everyone and the mirror no longer matters."""
    weight, mirrored = exposure
    return (100, 101) if weight >= 100 else (weight, mirrored)


# --- What a route, a selector, a mirror gives a revision ----------------------------


def _short(host: str) -> str:
    return host.split(".")[0]  # Istio names Services by FQDN


def routed(kind: str, route: Object) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(Service, weight) of the route's first rule and (Service, percent) it mirrors to."""
    if kind == "HTTPRoute":
        rule = route["spec"]["rules"][0]
        weights = [(r["name"], r.get("weight", 1)) for r in rule["backendRefs"]]
        mirrors = [(f["requestMirror"]["backendRef"]["name"], f["requestMirror"]["percent"])
                   for f in rule.get("filters") or [] if f["type"] == "RequestMirror"]  # fmt: skip
        return weights, mirrors
    http = route["spec"]["http"][0]
    weights = [(_short(d["destination"]["host"]), d.get("weight", 100)) for d in http["route"]]
    mirrors = []
    if "mirror" in http:
        percent = (http.get("mirrorPercentage") or {}).get("value", 100)
        mirrors = [(_short(http["mirror"]["host"]), round(percent))]
    return weights, mirrors


def exposure(s: Scenario, latest: Latest, revision: str) -> Exposure:
    """What users get of `revision` from the objects as they are in `latest`."""
    service = f"{s.name}-{revision}"
    kind = s.route_kind
    if kind is None:
        return entry_weight(s, latest, revision), mirrored(s, latest, revision)
    route = latest.get((kind, s.name))
    if route is None:
        return (0, 0)
    weights, mirrors = routed(kind, route)
    total = sum(w for _, w in weights)
    weight = sum(w for name, w in weights if name == service)
    return (round(100 * weight / total) if total else 0,
            sum(p for name, p in mirrors if name == service))  # fmt: skip


def entry_weight(s: Scenario, latest: Latest, revision: str) -> int:
    """`revision`'s share of what the entry Service selects: with a revision, all or
    nothing; without one (a `service` canary), its share of the replicas."""
    entry = latest.get(("Service", s.name))
    if entry is None:
        return 0
    selected = (entry["spec"].get("selector") or {}).get(REVISION)
    if selected is not None:
        return 100 if selected == revision else 0
    pods = {name.removeprefix(f"{s.name}-"): d["spec"]["replicas"]
            for (kind, name), d in latest.items()
            if kind == "Deployment" and name.startswith(f"{s.name}-")}  # fmt: skip
    total = sum(pods.values())
    return round(100 * pods.get(revision, 0) / total) if total else 0


def mirrored(s: Scenario, latest: Latest, revision: str) -> int:
    config = latest.get(("ConfigMap", f"{s.name}-mirror"))
    if config is None:
        return 0
    mirror = json.loads(config["data"]["mirror.json"])
    target = f"http://{s.name}-{revision}."
    return int(mirror.get("percent", 0)) if str(mirror.get("url", "")).startswith(target) else 0


# --- The invariants over every stored version ----------------------------------------


def own(s: Scenario, version: etcd_history.Version) -> bool:
    """Whether a stored version is of one of the objects of `s` that tell what it did:
    the ModelDeployment, its route, its entry Service (revision Services route
    nothing), its mirror ConfigMap and its Deployments."""
    kind, name = version.kind, version.name
    if kind in ("ModelDeployment", "HTTPRoute", "VirtualService", "Service"):
        return name == s.name
    if kind == "ConfigMap":
        return name == f"{s.name}-mirror"
    return kind == "Deployment" and name.startswith(f"{s.name}-")


@dataclasses.dataclass
class Findings:
    """What the history of one rollout shows."""

    violations: list[str] = dataclasses.field(default_factory=list)
    exposures: list[Exposure] = dataclasses.field(default_factory=list)  # each change once
    rolled_back_at: int | None = None  # revision of the first status saying RolledBack
    promoted_at: int | None = None  # revision of the first status with v2 stable


def check(s: Scenario, versions: list[etcd_history.Version], old: str, new: str) -> Findings:
    """The invariants over every stored version of the objects of `s`, in etcd's order;
    `old` is v1's revision, `new` v2's (the candidate)."""
    found = Findings()
    statuses = [(v.revision, (v.obj or {}).get("status") or {}) for v in versions
                if v.kind == "ModelDeployment"]  # fmt: skip
    found.rolled_back_at = next(
        (at for at, st in statuses if st.get("rejectedRevision") == new), None
    )
    found.promoted_at = next(
        (at for at, st in statuses if (st.get("stable") or {}).get("revision") == new), None
    )
    state = _Walk(s, old, new, found)
    for version in versions:
        state.step(version)
    steps = [st["candidate"].get("step") for _, st in statuses
             if (st.get("candidate") or {}).get("revision") == new]  # fmt: skip
    numbered = [step for step in steps if step is not None]
    if numbered != sorted(numbered):
        found.violations.append(f"the canary's step went back: {numbered}")
    if s.outcome == "RolledBack" and found.rolled_back_at is None:
        found.violations.append("no stored status ever said RolledBack")
    return found


class _Walk:
    """The objects as they stand after each stored version, and what each version did."""

    def __init__(self, s: Scenario, old: str, new: str, found: Findings) -> None:
        self.s, self.old, self.new, self.found = s, old, new, found
        self.rolled_back = found.rolled_back_at if found.rolled_back_at is not None else NEVER
        self.promoted = found.promoted_at if found.promoted_at is not None else NEVER
        self.latest: Latest = {}
        self.last: Exposure | None = None
        self.last_entry: int | None = None
        self.template: Object | None = None
        self.candidate_pods: int | None = None

    def bad(self, version: etcd_history.Version, text: str) -> None:
        where = f"{version.kind} {version.name} at revision {version.revision}"
        self.found.violations.append(f"{where}: {text}")

    def step(self, v: etcd_history.Version) -> None:
        if v.obj is None:
            self.latest.pop((v.kind, v.name), None)
            return
        self.latest[(v.kind, v.name)] = v.obj
        if v.kind == "ModelDeployment":
            self._status(v, v.obj.get("status") or {})
            return
        if v.kind == "Deployment":
            self._deployment(v, v.obj)
        self._exposure(v)

    def _status(self, v: etcd_history.Version, st: Object) -> None:
        named = {
            (st.get("candidate") or {}).get("revision"),
            (st.get("stable") or {}).get("revision"),
        }
        if v.revision > self.rolled_back and self.new in named:
            self.bad(v, "the rejected revision is back in the status")
        stable = (st.get("stable") or {}).get("revision")
        if self.s.outcome == "Promoted" and v.revision > self.promoted and stable != self.new:
            self.bad(v, f"the promoted revision stopped being the stable ({stable})")

    def _deployment(self, v: etcd_history.Version, obj: Object) -> None:
        replicas = obj["spec"]["replicas"]
        if v.name == f"{self.s.name}-{self.old}":
            template = obj["spec"]["template"]
            if self.template is not None and template != self.template:
                self.bad(v, "the stable's pod template changed")
            self.template = template
            if replicas != self.s.replicas and v.revision < self.promoted:
                self.bad(v, f"the serving stable scaled to {replicas}")
        if v.name == f"{self.s.name}-{self.new}":
            before = self.candidate_pods
            if v.revision > self.rolled_back and before is not None and replicas > before:
                self.bad(v, f"the rejected candidate scaled up from {before} to {replicas}")
            self.candidate_pods = replicas

    def gives(self, v: etcd_history.Version) -> Exposure:
        """What this version of a route, selector or mirror itself gives the candidate
        (with a mesh the route decides for users, the entry Service for callers inside
        the cluster)."""
        if v.kind in ("HTTPRoute", "VirtualService"):
            return exposure(self.s, self.latest, self.new)
        if v.kind == "Service":
            return entry_weight(self.s, self.latest, self.new), 0
        return 0, mirrored(self.s, self.latest, self.new)

    def _exposure(self, v: etcd_history.Version) -> None:
        now = exposure(self.s, self.latest, self.new)
        after = v.revision > self.rolled_back
        if after and v.kind in TRAFFIC_KINDS and (gives := self.gives(v)) != (0, 0):
            self.bad(v, f"gives the rolled-back candidate {gives}")
        if not after and now not in self.s.allowed():
            self.bad(v, f"gives the candidate {now}, not a step of {self.s.strategy}")
        last = self.last
        if last is not None and now != last:
            backwards = rank(now) < rank(last)
            if backwards and not after:
                self.bad(v, f"flip-flop: the candidate went from {last} back to {now}")
            if not backwards and after:
                self.bad(v, f"after the rollback the candidate went from {last} up to {now}")
            self.found.exposures.append(now)
        elif last is None:
            self.found.exposures.append(now)
        self.last = now
        if self.s.route_kind is not None:  # in-cluster callers, through the entry Service
            entry = entry_weight(self.s, self.latest, self.new)
            if self.last_entry is not None and entry < self.last_entry and not after:
                self.bad(v, "flip-flop: the entry Service went back from the candidate")
            self.last_entry = entry


# --- Where it ended -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Now:
    """Every object of a namespace as one read saw them."""

    objects: Latest

    def get(self, kind: str, name: str) -> Object | None:
        return self.objects.get((kind, name))

    def deployments(self, s: Scenario) -> dict[str, Object]:
        """The Deployments of one ModelDeployment, by revision."""
        return {d["metadata"]["labels"][REVISION]: d for (kind, _), d in self.objects.items()
                if kind == "Deployment"
                and d["metadata"]["labels"].get("pitstop.dev/model-deployment") == s.name}  # fmt: skip


def expected_history(s: Scenario, old: str, new: str) -> list[tuple[str, str]]:
    """(revision, outcome) of status.history where an undisturbed rollout ends."""
    if s.outcome == "Promoted":
        return [(old, "Retired"), (new, "Promoted")]
    if s.strategy == "BlueGreen":  # analysed after the switch: back to v1, a new record
        return [(old, "Retired"), (new, "RolledBack"), (old, "Promoted")]
    return [(old, "Promoted"), (new, "RolledBack")]


def end_state(s: Scenario, now: Now, old: str) -> tuple[list[str], str | None]:
    """How `s` differs from where it would have ended undisturbed (empty: it is there),
    and v2's revision once its Deployment exists."""
    md = now.get("ModelDeployment", s.name) or {}
    st = md.get("status") or {}
    by_version = {d["metadata"]["labels"][VERSION]: rev for rev, d in now.deployments(s).items()}
    new = by_version.get("2")
    if new is None:
        return ["no Deployment of v2 yet"], None
    stable, other = (new, old) if s.outcome == "Promoted" else (old, new)
    ready = next((c for c in st.get("conditions", []) if c["type"] == "Ready"), {})
    entry = (now.get("Service", s.name) or {}).get("spec", {}).get("selector") or {}
    wanted: Object = {
        "phase": "Healthy" if s.outcome == "Promoted" else "RolledBack",
        "stable": stable, "candidate": None, "previous": None,
        "rejected": None if s.outcome == "Promoted" else new,
        "history": expected_history(s, old, new),
        "observed": md.get("metadata", {}).get("generation"),
        "ready": "True",
        "traffic": {"stable": 100, "candidate": 0, "mirrored": 0},
        "routed": (100, 0), "other routed": (0, 0), "entry": stable,
        "replicas": {stable: s.replicas, other: 0},
    }  # fmt: skip
    got: Object = {
        "phase": st.get("phase"),
        "stable": (st.get("stable") or {}).get("revision"),
        "candidate": (st.get("candidate") or {}).get("revision"),
        "previous": (st.get("previous") or {}).get("revision"),
        "rejected": st.get("rejectedRevision"),
        "history": [(h["revision"], h["outcome"]) for h in st.get("history", [])],
        "observed": st.get("observedGeneration"),
        "ready": ready.get("status"),
        "traffic": {k: (st.get("traffic") or {}).get(k) for k in ("stable", "candidate", "mirrored")},
        "routed": exposure(s, now.objects, stable),
        "other routed": exposure(s, now.objects, other),
        "entry": entry.get(REVISION),
        "replicas": {rev: d["spec"]["replicas"] for rev, d in now.deployments(s).items()},
    }  # fmt: skip
    kind = s.route_kind
    if kind is not None:  # exactly the stable, nothing else, nothing mirrored
        route = now.get(kind, s.name)
        wanted["route"] = ([(f"{s.name}-{stable}", 100)], [])
        got["route"] = routed(kind, route) if route else None
    else:
        config = now.get("ConfigMap", f"{s.name}-mirror")
        wanted["mirror"] = {"percent": 0}
        # Absent (a canary never needed one; pods mount it optional) mirrors nothing too.
        got["mirror"] = json.loads(config["data"]["mirror.json"]) if config else {"percent": 0}
    return [f"{k}: {got[k]!r}, want {wanted[k]!r}" for k in wanted if got[k] != wanted[k]], new
