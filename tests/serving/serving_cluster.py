"""What the serving tests share: the servers `conftest.cluster` starts once per session, and
the API keys the guarded ones take.

Kept out of `conftest.py` so the tests can import it by a name of its own: a process that
collects several suites has several modules named `conftest`, and an import by that name
gets whichever folder is first on `sys.path` (the integration suite's, beside it in
`make test`'s first phase).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from serving_harness import Server

KEYS = {
    "alice": "alice-secret-key-1",
    "bob": "bob-secret-key-2",
    "scrape-prometheus": "prometheus-scrape-key-9",  # may read /metrics and /evidence only
}


@dataclass
class Cluster:
    home: Path
    bentos: dict[str, str]
    keys_dir: Path
    mirror_file: Path
    guarded: Server
    open: Server
    batched: Server
    same: Server
    other: Server
    broken: Server
    price: Server
    small: Server
    peer_a: Server
    peer_b: Server
