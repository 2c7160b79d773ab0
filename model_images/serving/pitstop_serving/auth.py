"""API keys from a mounted Secret directory, re-read when it changes.

Each regular file holds one key; its file name is the key's id (used for throttling
and logs, so the key itself never appears anywhere). Kubernetes updates a mounted
Secret by swapping a `..data` symlink, so the directory is fingerprinted (names,
mtimes, sizes of the visible files) at most once per `RECHECK_SECONDS` and reloaded
when the fingerprint changes: rotation needs no restart. No keys means auth is off.
"""

from __future__ import annotations

import hmac
import logging
import os
from pathlib import Path

RECHECK_SECONDS = 1.0
log = logging.getLogger("pitstop.auth")


class KeyStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._keys: list[tuple[bytes, str]] = []
        self._fingerprint: tuple[tuple[str, int, int], ...] | None = None
        self._checked_at = float("-inf")

    def _scan(self) -> tuple[tuple[str, int, int], ...]:
        try:
            entries = list(os.scandir(self.directory))
        except OSError:
            return ()
        found = []
        for entry in entries:
            # Dot entries are the Secret volume's own bookkeeping (..data, ..2024_..).
            if entry.name.startswith("."):
                continue
            try:
                stat = entry.stat()
            except OSError:
                continue
            if entry.is_file():
                found.append((entry.name, stat.st_mtime_ns, stat.st_size))
        return tuple(sorted(found))

    def refresh(self, now: float) -> None:
        """Reload the keys if the directory changed (checked at most once a second)."""
        if now - self._checked_at < RECHECK_SECONDS:
            return
        self._checked_at = now
        fingerprint = self._scan()
        if fingerprint == self._fingerprint:
            return
        keys = []
        for name, _, _ in fingerprint:
            try:
                key = (self.directory / name).read_bytes().strip()
            except OSError:
                continue
            if key:
                keys.append((key, name))
        self._keys = keys
        self._fingerprint = fingerprint
        log.info("loaded %d API keys from %s", len(keys), self.directory)

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
