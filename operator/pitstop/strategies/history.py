"""The revision history in status: bounded, without losing what the engine still reads.

Every rollout adds entries, and a status that only grows ends up slowing every read of
the object and, near etcd's object size limit, failing every write. The history keeps
its newest `LIMIT` entries. Older ones stay only while the engine still needs them: an
open entry (the serving revision's, closed when it is replaced) and the last entry of
each revision whose Deployment still exists (retirement orders retained revisions by
it, and `pitstop undo` reads it). Retained revisions number at most
`revisionHistoryLimit` plus the live ones, so the history never holds more than
`LIMIT + revisionHistoryLimit + 3` entries, and shortening it never deletes a revision
that `revisionHistoryLimit` still keeps.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from pitstop.api.status import HistoryEntry

# Entries kept beyond those the engine needs: a few weeks of daily rollouts to read back.
LIMIT = 20


def bounded(entries: list[HistoryEntry], retained: Collection[str]) -> list[HistoryEntry]:
    """`entries` (oldest first) without those neither recent nor needed any more."""
    first_recent = len(entries) - LIMIT
    last = {entry.revision: index for index, entry in enumerate(entries)}
    return [
        entry
        for index, entry in enumerate(entries)
        if index >= first_recent
        or entry.ended_at is None
        or (entry.revision in retained and last[entry.revision] == index)
    ]


def ended(before: Iterable[HistoryEntry], after: Iterable[HistoryEntry]) -> list[HistoryEntry]:
    """Entries of `after` that got their outcome since `before`: each rollout ends in
    exactly one committed pass, so whatever reads this tells of it once."""
    done = {(e.revision, e.started_at) for e in before if e.outcome is not None}
    return [e for e in after if e.outcome is not None and (e.revision, e.started_at) not in done]
