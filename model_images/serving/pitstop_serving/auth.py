"""API keys from a mounted Secret directory, re-read when it changes.

Each regular file holds one key; its file name is the key's id (used for throttling
and logs, so the key itself never appears anywhere). Kubernetes updates a mounted
Secret by swapping a `..data` symlink, so the directory is fingerprinted (names,
mtimes, sizes of the visible files) at most once per `RECHECK_SECONDS` and reloaded
when the fingerprint changes: rotation needs no restart.

When auth is required (the directory was named explicitly, which the operator does
exactly when a ModelDeployment asks for auth), a directory that is missing, empty or
unreadable must not open the door: `problem` then says why, and the server refuses
predictions and reports itself unready until keys can be read again. Only when auth
was not asked for do no keys mean auth is off.

With auth on, a key opens more than `/predict`: `/signature` (it holds the training
profile: feature names, ranges, quantiles) needs a key too, and so do `/metrics` and
`/evidence` (traffic, error rates, the live input distribution). A key whose id starts
with `SCRAPE_PREFIX` (a Secret entry named e.g. `scrape-prometheus`) opens only those
two: give Prometheus that one, and it can read the counters but never predict or read
the profile. `/livez` and `/readyz` stay open (the kubelet's probes send no key, and
they say nothing about the model).
"""

from __future__ import annotations

import hmac
import logging
import os
from pathlib import Path

RECHECK_SECONDS = 1.0
SCRAPE_PREFIX = "scrape-"
log = logging.getLogger("pitstop.auth")

Fingerprint = tuple[tuple[str, int, int], ...]


class KeyStore:
    def __init__(self, directory: Path, required: bool = False) -> None:
        self.directory = directory
        self.required = required
        # Read on every request: a plain attribute, set only by `refresh`.
        self.problem: str | None = None
        self._keys: list[tuple[bytes, str]] = []
        self._fingerprint: Fingerprint | None = None
        self._complete = False  # every file of the fingerprint was read
        self._checked_at = float("-inf")

    def _scan(self) -> tuple[Fingerprint, str | None]:
        """The directory's fingerprint, and why it could not be listed (if so)."""
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return (), f"{self.directory} does not exist"
        except OSError as error:
            return (), f"{self.directory} cannot be read ({error.strerror or error})"
        found = []
        for entry in entries:
            # Dot entries are the Secret volume's own bookkeeping (..data, ..2024_..).
            if entry.name.startswith("."):
                continue
            try:
                stat = entry.stat()
            except OSError:
                # A dangling link: listed with a size of -1, so the fingerprint
                # changes when it is repaired; its read below fails.
                found.append((entry.name, 0, -1))
                continue
            if entry.is_file():
                found.append((entry.name, stat.st_mtime_ns, stat.st_size))
        return tuple(sorted(found)), None

    def refresh(self, now: float) -> None:
        """Reload the keys if the directory changed (checked at most once a second)."""
        if now - self._checked_at < RECHECK_SECONDS:
            return
        self._checked_at = now
        fingerprint, unlisted = self._scan()
        # A file that could not be read is tried again at the next check even if the
        # fingerprint stays the same (a permission change moves no mtime).
        if fingerprint == self._fingerprint and self._complete:
            return
        keys = []
        complete = True
        for name, _, _ in fingerprint:
            try:
                key = (self.directory / name).read_bytes().strip()
            except OSError:
                complete = False
                continue
            if key:
                keys.append((key, name))
        changed = fingerprint != self._fingerprint or len(keys) != len(self._keys)
        self._keys = keys
        self._fingerprint = fingerprint
        self._complete = complete and unlisted is None
        problem = None
        if self.required and not keys:
            reason = unlisted or (
                f"{self.directory} holds no key file"
                if not fingerprint
                else f"no key file in {self.directory} is readable and non-empty"
            )
            problem = f"API keys are required but none can be read: {reason}"
        if problem is not None and problem != self.problem:
            log.error("%s; refusing predictions until keys are readable", problem)
        elif changed or problem != self.problem:
            log.info("loaded %d API keys from %s", len(keys), self.directory)
        self.problem = problem

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def identify(self, presented: bytes) -> str | None:
        """The id of the key presented, or None; compares against every key in
        constant time so timing reveals neither the key nor which one matched."""
        match = None
        for key, name in self._keys:
            if hmac.compare_digest(presented, key):
                match = name
        return match


def scrape_only(key_id: str) -> bool:
    """Whether the key may read /metrics and /evidence and nothing else."""
    return key_id.startswith(SCRAPE_PREFIX)


def presented(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The key a request presents (`Authorization: Bearer` or `X-API-Key`), if any."""
    found = None
    for name, value in headers:
        if name == b"authorization":
            if value[:7].lower() == b"bearer ":
                found = value[7:].strip()
        elif name == b"x-api-key":
            found = value.strip()
    return found


def check(
    keys: KeyStore, key: bytes | None, *, scrape: bool
) -> tuple[int, str | None, list[tuple[bytes, bytes]], str]:
    """(status, why refused, extra headers, key id) for a request presenting `key` (call
    `keys.refresh` first); `scrape`: the path is /metrics or /evidence."""
    if keys.problem is not None:
        # Auth was asked for but no key can be read. Not 401: the client's key is not at
        # fault, and a 5xx is what error-rate analysis and clients' retries (on another
        # pod) act on. Keys are re-read every second, hence Retry-After.
        return 503, keys.problem, [(b"retry-after", b"1")], ""
    if not keys.enabled:
        return 200, None, [], ""
    if key is None:
        why = "an API key is required (Authorization: Bearer)"
        return 401, why, [(b"www-authenticate", b"Bearer")], ""
    key_id = keys.identify(key) or ""
    if not key_id:
        return 403, "the API key is not valid", [], ""
    if scrape_only(key_id) and not scrape:
        return 403, f"the API key {key_id} may only read /metrics and /evidence", [], key_id
    return 200, None, [], key_id
