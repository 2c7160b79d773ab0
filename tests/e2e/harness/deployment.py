"""One ModelDeployment as an e2e test drives it: apply a version, read status, wait."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import yaml
from pitstop.devcluster import testing

from harness import models

Status = dict[str, Any]


class Deployment:
    """The ModelDeployment `name` in `namespace`, serving the scenario models."""

    def __init__(
        self,
        cluster: testing.DevCluster,
        namespace: str,
        name: str = "fraud",
        images: Mapping[str, str] | None = None,
    ) -> None:
        self.cluster, self.namespace, self.name = cluster, namespace, name
        # version -> image: the real node's built images; else the emulator's names.
        self.images = images

    def apply(
        self,
        version: str,
        strategy: Mapping[str, Any],
        *,
        replicas: int = 1,
        **spec: Any,
    ) -> None:
        """Apply the spec for `version` (its image maps to that model's bento);
        `spec` adds fields such as `analysis=` or `traffic=`."""
        body = {
            "apiVersion": "pitstop.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": self.name},
            "spec": {
                "model": {"name": models.NAME, "version": version},
                "image": self.images[version] if self.images else models.image(version),
                "serving": {"replicas": replicas},
                "strategy": dict(strategy),
                **spec,
            },
        }
        self.cluster.kubectl("apply", "-n", self.namespace, "-f", "-", input=yaml.safe_dump(body))

    def get(self, *what: str) -> Any:
        return self.cluster.require(*what, namespace=self.namespace)

    def status(self) -> Status:
        status: Status = self.get("md", self.name).get("status", {})
        return status

    def until(self, what: str, check: Callable[[Status], bool], timeout: float = 90) -> Status:
        last: list[Status] = [{}]

        def probe() -> Status | None:
            last[0] = status = self.status()
            return status if check(status) else None

        try:
            return self.cluster.wait(what, probe, timeout=timeout, interval=0.25)
        except AssertionError as error:
            shown = {k: last[0].get(k) for k in ("phase", "message", "candidate", "analysis")}
            raise AssertionError(f"{error}; last status: {shown}") from None

    def healthy(self, version: str, timeout: float = 90) -> Status:
        return self.until(
            f"v{version} Healthy",
            lambda s: (
                s.get("phase") == "Healthy" and (s.get("stable") or {}).get("version") == version
            ),
            timeout,
        )

    def revision(self, version: str) -> str:
        """The revision of the Deployment running `version`."""
        selector = f"pitstop.dev/model-deployment={self.name},pitstop.dev/model-version={version}"
        items = self.get("deployments", "-l", selector)["items"]
        assert len(items) == 1, f"{len(items)} Deployments run v{version}"
        return str(items[0]["metadata"]["labels"]["pitstop.dev/revision"])
