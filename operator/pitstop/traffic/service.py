"""The `service` provider: no mesh, no gateway, only Kubernetes Services.

- Blue/green and steady state: the entry Service selects the serving revision's pods.
- Decommissioned: the entry Service selects no pod (`labels.NO_REVISION`), so the
  revisions' pods leave its endpoints before they are deleted.
- Canary: the entry Service selects the pods of every running revision, so the
  candidate's share of traffic is its share of ready pods (kube-proxy balances per
  connection). With `replicas: R` on the stable, a weight w gives the candidate
  round(R*w/(100-w)) pods (at least one): R=2 makes 10% into 1 pod, i.e. 33%. The
  effective share is what status.traffic reports; use gateway-api or istio for exact
  weights.
- Shadow: the serving template mirrors by itself; the `<name>-mirror` ConfigMap, mounted
  into every revision's pods (optional: absent means no mirror), names the candidate's
  Service and the percent. It is written when a shadow first needs it, not for every
  model: one write and one object less per ModelDeployment that never mirrors.
"""

from __future__ import annotations

from typing import ClassVar

from pitstop.api.resource import ModelDeployment
from pitstop.k8s import seen
from pitstop.k8s.client import KubeClient
from pitstop.rendering import children, labels
from pitstop.traffic.provider import MIRROR, WEIGHTS, WEIGHTS_BY_REPLICAS, Split, Verification


class ServiceProvider:
    name: ClassVar[str] = "service"
    capabilities: ClassVar[frozenset[str]] = frozenset({WEIGHTS, MIRROR, WEIGHTS_BY_REPLICAS})

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube

    def problem(self, md: ModelDeployment) -> str | None:
        return None  # Services always exist: Pitstop creates them

    def unsupported(self, md: ModelDeployment, needs: frozenset[str]) -> str | None:
        return None  # the serving template mirrors by itself

    def apply(self, md: ModelDeployment, split: Split) -> None:
        self.kube.apply(children.entry_service(md, _selected(split)))
        target = _mirror_target(md, split)
        mirror = children.mirror_config_map(md, target, split.mirror if target else 0)
        if target is None and self._never_written(mirror):
            return  # no mirror now, and no ConfigMap saying otherwise
        self.kube.apply(mirror)

    def verify(self, md: ModelDeployment, split: Split) -> Verification:
        ns, name = md.metadata.namespace, md.metadata.name
        entry = self.kube.child("v1", "Service", ns, labels.entry_name(name))
        wanted = labels.pod_selector(name, _selected(split))
        if entry is None or (entry.get("spec") or {}).get("selector") != wanted:
            return Verification(False, f"Service {name} does not select {wanted} yet")
        mirror = self.kube.child("v1", "ConfigMap", ns, labels.mirror_name(name))
        target = _mirror_target(md, split)
        expected = children.mirror_config_map(md, target, split.mirror if target else 0)["data"]
        if mirror is None and target is None:
            return Verification(True)  # absent: the pods mirror nothing
        if mirror is None or mirror.get("data") != expected:
            return Verification(False, f"ConfigMap {labels.mirror_name(name)} is not in place yet")
        return Verification(True)

    def _never_written(self, mirror: dict[str, object]) -> bool:
        """Whether the watch has never shown the mirror ConfigMap (it does not exist).
        Without a watch (the CLI), it is written as before: percent 0."""
        if self.kube.seen is None:
            return False
        return self.kube.seen.get(seen.key_of(mirror)) is None and not self.kube.wrote(mirror)


def _selected(split: Split) -> str | None:
    """Which revision the entry Service selects; None: all running revisions (canary);
    `NO_REVISION`: no pod (decommissioned)."""
    if split.stable is None:
        return labels.NO_REVISION
    if split.candidate is None or split.weight <= 0:
        return split.stable
    if split.weight >= 100:
        return split.candidate
    return None


def _mirror_target(md: ModelDeployment, split: Split) -> str | None:
    if split.candidate is None or split.mirror <= 0:
        return None
    return labels.revision_name(md.metadata.name, split.candidate)
