"""Kubeconfig files for the local control plane's clients.

Owns the one file format every client reads (kubectl, the controllers, kwok, the
Python client). Certificates are referenced by path, not inlined, so a kubeconfig
stays readable and the PKI has a single copy.
"""

from __future__ import annotations

from pathlib import Path

import yaml

CONTEXT = "pitstop-dev"


def render(*, server: str, ca: Path, cert: Path, key: Path, user: str) -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CONTEXT,
                "cluster": {"server": server, "certificate-authority": str(ca)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {"client-certificate": str(cert), "client-key": str(key)},
            }
        ],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": user}}],
        "current-context": CONTEXT,
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False)


def write(path: Path, *, server: str, ca: Path, cert: Path, key: Path, user: str) -> Path:
    path.write_text(render(server=server, ca=ca, cert=cert, key=key, user=user))
    path.chmod(0o600)
    return path
