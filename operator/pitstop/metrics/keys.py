"""The API key Pitstop itself presents to an authenticated model: smoke tests, generated
load and the builtin metrics' reads of /evidence are requests like any other, and the
serving template refuses them without a key (it fails closed when auth is asked for)."""

from __future__ import annotations

from pitstop.api.resource import ModelDeployment
from pitstop.k8s.client import KubeClient

# Entries named so are keys that may only read /metrics and /evidence (for Prometheus):
# the serving template's `auth.SCRAPE_PREFIX`, which a test holds equal to this.
SCRAPE_PREFIX = "scrape-"


def headers(kube: KubeClient, md: ModelDeployment) -> dict[str, str]:
    """Authorization for requests to `md`'s model servers ({} when auth is off).

    The first key of the ModelDeployment's keys Secret, by entry name, that is not a
    scrape-only key: every other entry is accepted everywhere, and a stable choice keeps
    Pitstop's requests on one throttle bucket.
    """
    auth = md.spec.serving.auth
    if auth is None:
        return {}
    entries = kube.read_secret(md.metadata.namespace, auth.api_keys_secret) or {}
    try:
        return {"Authorization": f"Bearer {pick(entries)}"}
    except LookupError as error:
        raise LookupError(f"Secret {auth.api_keys_secret} {error}") from None


def pick(entries: dict[str, str]) -> str:
    """The key to present from a keys Secret's entries (see `headers`)."""
    keys = [value.strip() for name, value in sorted(entries.items())
            if value.strip() and not name.startswith(SCRAPE_PREFIX)]  # fmt: skip
    if not keys:
        scrape = any(name.startswith(SCRAPE_PREFIX) for name in entries)
        raise LookupError(
            f"holds no API key{f' but scrape-only ones ({SCRAPE_PREFIX}*)' if scrape else ''}"
        )
    return keys[0]
