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
"""

from __future__ import annotations

import hmac
import logging
import os
from pathlib import Path

RECHECK_SECONDS = 1.0
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
