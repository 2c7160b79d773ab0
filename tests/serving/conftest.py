"""Shared, expensive setup for the serving tests: one model store, five servers.

Models are trained, packaged and built into bentos once per session (in a child
process, see serving_models.py); the servers start together and are reused by all
tests, each test using the server whose configuration it needs:

- `guarded`: fraud:1 with API keys required, 1 rps / burst 5 throttling, batches of 3 at most
- `open`: fraud:1 without auth, drift window 500, a mirror file the tests rewrite
- `same`: fraud:1 again (a shadow that agrees), `other`: fraud:2 (disagrees)
- `broken`: a model whose outputs are all NaN (feedback off)
- `price`: price:1, a regressor; `small`: fraud:1 keeping 5 predictions for feedback;
  `peer_a`, `peer_b`: fraud:1 twice, each the other's feedback peer (b from a file)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving_cluster import KEYS, Cluster
from serving_harness import Server, free_port

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("serving")
    home = root / "bentoml"
    env = {"BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
    built = subprocess.run(
        [sys.executable, str(HERE / "serving_models.py")],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    bentos: dict[str, str] = json.loads(built.stdout.strip().splitlines()[-1])
    keys_dir = root / "keys"
    keys_dir.mkdir()
    for name, key in KEYS.items():
        (keys_dir / name).write_text(key + "\n")
    mirror_file = root / "mirror" / "mirror.json"
    mirror_file.parent.mkdir()

    def start(name: str, bento: str, port: int | None = None, **settings: str) -> Server:
        return Server(
            bentos[bento],
            # The bento's envs apply inside its image; a local `bentoml serve` needs them.
            # No PITSTOP_API_KEYS_DIR unless a server asks for auth: naming a directory
            # requires keys from it (the others look at the default, absent here).
            {**env, "PITSTOP_MODEL": bento, **settings},
            root / f"{name}.log",
            port=port,
        )

    servers = {
        "guarded": start(
            "guarded",
            "fraud:1",
            PITSTOP_API_KEYS_DIR=str(keys_dir),
            PITSTOP_RATE_LIMIT_RPS="1",
            PITSTOP_RATE_LIMIT_BURST="5",
            PITSTOP_MAX_BATCH="3",
        ),
        "open": start(
            "open",
            "fraud:1",
            PITSTOP_DRIFT_WINDOW="500",
            PITSTOP_MIRROR_CONFIG=str(mirror_file),
            PITSTOP_REVISION="fraud-1-open",
        ),
        "batched": start("batched", "fraud:1", PITSTOP_BATCH_WAIT_MS="20"),
        "same": start("same", "fraud:1"),
        "other": start("other", "fraud:2"),
        "broken": start("broken", "broken:1", PITSTOP_FEEDBACK_RETAIN="0"),
        "price": start("price", "price:1", PITSTOP_REVISION="price-1"),
        "small": start("small", "fraud:1", PITSTOP_FEEDBACK_RETAIN="5"),
    }

    def start_peers() -> dict[str, Server]:
        """peer_a and peer_b, each the other's feedback peer. Each must know the other's
        port before either starts, so their ports are fixed, and `Server` cannot move one
        that another process of a busy suite took first (seen once, beside the
        integration suite): then both start again on new ports."""
        for attempt in range(3):
            port_a, port_b = free_port(), free_port()
            peers_file = root / "peers"
            peers_file.write_text(f"127.0.0.1:{port_a}\n127.0.0.1:{port_b}\n")
            peers = {
                # Listed both ways: each skips its own address.
                "peer_a": start(
                    "peer_a",
                    "fraud:1",
                    port_a,
                    PITSTOP_FEEDBACK_PEERS=f"127.0.0.1:{port_a},127.0.0.1:{port_b}",
                ),
                # peer_b reads them from a file (re-read as it changes), one per line.
                "peer_b": start(
                    "peer_b", "fraud:1", port_b, PITSTOP_FEEDBACK_PEERS=str(peers_file)
                ),
            }
            try:
                for peer in peers.values():
                    peer.wait_ready()
                return peers
            except AssertionError as error:
                for peer in peers.values():
                    peer.stop()
                if "Address already in use" not in str(error) or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    try:
        servers.update(start_peers())
        for server in servers.values():
            server.wait_ready()
        yield Cluster(home, bentos, keys_dir, mirror_file, **servers)
    finally:
        for server in servers.values():
            server.stop()
