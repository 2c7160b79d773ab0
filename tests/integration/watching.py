"""Every version of one object, as `kubectl get --watch` delivers it, with when it came.

Nothing that happens between two polls can be missed, so a flip-flop (a weight that
goes back, a selector that returns) cannot hide; the arrival times measure how soon
something changed (a handover). Run with admin credentials: it is the test's eye.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from pitstop.devcluster import testing

Object = dict[str, Any]
T = TypeVar("T")


class History:
    def __init__(
        self, cluster: testing.DevCluster, namespace: str, resource: str, name: str
    ) -> None:
        self.cluster = cluster
        self.versions: list[tuple[float, Object]] = []  # (time.monotonic() on arrival, object)
        self.started = time.monotonic()
        self.shown: list[tuple[float, str, Any]] = []
        self._watch = subprocess.Popen(
            [str(cluster.bin_dir / "kubectl"), f"--kubeconfig={cluster.kubeconfig}", "get",
             resource, name, "-n", namespace, "-o", "json", "--watch"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        # The watch starts from the object as it is when kubectl gets there: wait for
        # it, so that whatever the test does next is seen as a change.
        cluster.wait(f"the watch on {resource}/{name}", lambda: self.versions, timeout=30)

    def _read(self) -> None:
        assert self._watch.stdout is not None
        decoder, text = json.JSONDecoder(), ""
        for line in self._watch.stdout:  # objects come pretty-printed, one after another
            text += line
            try:
                obj, _ = decoder.raw_decode(text.strip())
            except json.JSONDecodeError:
                continue
            self.versions.append((time.monotonic(), obj))
            text = ""

    def close(self) -> None:
        self._watch.terminate()
        self._watch.wait(timeout=10)
        self._reader.join(timeout=10)
        if self._watch.stdout is not None:
            self._watch.stdout.close()

    def until(self, last: Object) -> list[tuple[float, Object]]:
        """The versions delivered up to `last` (one read directly, which the watch may
        deliver a moment later)."""
        version = last["metadata"]["resourceVersion"]

        def delivered() -> list[tuple[float, Object]] | None:
            versions = list(self.versions)
            seen = [obj["metadata"]["resourceVersion"] for _, obj in versions]
            return versions[: seen.index(version) + 1] if version in seen else None

        return self.cluster.wait(f"the watch to deliver {version}", delivered, timeout=30)

    def changes(self, last: Object, view: Callable[[Object], T]) -> list[T]:
        """What `view` showed of each version up to `last`, each change once."""
        seen: list[T] = []
        self.shown = [(round(at - self.started, 2), obj["metadata"]["resourceVersion"], view(obj))
                      for at, obj in self.until(last)]  # fmt: skip
        """Every version: (seconds since the watch started, resourceVersion, view), to
        read when an assertion on `changes` fails."""
        for _, obj in self.until(last):
            shown = view(obj)
            if not seen or seen[-1] != shown:
                seen.append(shown)
        return seen
