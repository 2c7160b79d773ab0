"""The API key Pitstop itself presents to an authenticated model: smoke tests and
generated load are requests like any other, and the serving template refuses them
without a key (it fails closed when auth is asked for)."""

from __future__ import annotations

from pitstop.api.resource import ModelDeployment
from pitstop.k8s.client import KubeClient


def headers(kube: KubeClient, md: ModelDeployment) -> dict[str, str]:
    """Authorization for requests to `md`'s model servers ({} when auth is off).

    The first key of the ModelDeployment's keys Secret, by entry name: every entry is an
    accepted key, and a stable choice keeps Pitstop's requests on one throttle bucket.
    """
    auth = md.spec.serving.auth
    if auth is None:
        return {}
    entries = kube.read_secret(md.metadata.namespace, auth.api_keys_secret) or {}
    keys = [value.strip() for _, value in sorted(entries.items()) if value.strip()]
    if not keys:
        raise LookupError(f"Secret {auth.api_keys_secret} holds no API key")
    return {"Authorization": f"Bearer {keys[0]}"}
