"""The other pods of a model, which `/feedback` asks about ids this worker does not hold.

`PITSTOP_FEEDBACK_PEERS` names them: `host:port` of a headless Service (every A/AAAA
record is a pod; resolved with the system resolver, cached `TTL` seconds), a
comma-separated list of `host:port`, or the path of a file holding such a list (one or
more per line, re-read every `TTL` seconds: for clusters whose DNS does not serve
headless Services, a file kept up to date by a sidecar or a test's kubelet). This pod's own address is left out: the address
the request came in on (the ASGI scope's `server`) and this host's addresses at that
port. A forwarded batch carries `x-pitstop-feedback-forwarded: 1`, so a peer looks in
its own log only and forwards nothing further. A peer that cannot be reached, is slow
(`TIMEOUT`) or answers nonsense counts as not holding the items: logged, never an
error for the client.

I/O only: which results count is `feedback`'s decision.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from pathlib import Path

import httpx

TIMEOUT = 2.0
TTL = 5.0
FORWARDED = b"x-pitstop-feedback-forwarded"
log = logging.getLogger("pitstop.feedback")

Address = tuple[str, int]


def parse(spec: str) -> list[Address]:
    """`host:port[,host:port...]`; raises ValueError naming a malformed entry."""
    targets = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        host, sep, port = part.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{part!r} is not host:port")
        targets.append((host, int(port)))
    return targets


def _own_hosts() -> set[str]:
    try:
        return set(socket.gethostbyname_ex(socket.gethostname())[2])
    except OSError:
        return set()


def parse_spec(spec: str) -> tuple[list[Address], Path | None]:
    """The peers `spec` names, or the file that lists them (read at each resolve)."""
    if spec.strip().startswith("/"):
        return [], Path(spec.strip())
    return parse(spec), None


class Peers:
    def __init__(self, targets: list[Address], listing: Path | None = None) -> None:
        self.targets = targets
        self.listing = listing
        self._resolved: list[Address] = []
        self._resolved_at = float("-inf")
        self._own_hosts: set[str] | None = None
        self._client: httpx.AsyncClient | None = None

    async def _resolve(self) -> list[Address]:
        now = time.monotonic()
        if now - self._resolved_at < TTL:
            return self._resolved
        loop = asyncio.get_running_loop()
        found: dict[Address, None] = {}
        targets = self.targets
        if self.listing is not None:
            try:
                text = await asyncio.to_thread(self.listing.read_text)
                targets = parse(text.replace("\n", ","))
            except (OSError, ValueError) as error:
                log.warning("cannot read feedback peers from %s: %s", self.listing, error)
                targets = []
        for host, port in targets:
            try:
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError as error:
                log.warning("cannot resolve feedback peer %s:%d: %s", host, port, error)
                continue
            for *_, sockaddr in infos:
                found[str(sockaddr[0]), int(sockaddr[1])] = None
        self._resolved, self._resolved_at = list(found), now
        return self._resolved

    async def addresses(self, own: Address | None) -> list[Address]:
        """The peers' addresses, this pod's own left out."""
        if self._own_hosts is None:
            self._own_hosts = await asyncio.to_thread(_own_hosts)
        addresses = await self._resolve()
        if own is None:
            return addresses
        own_hosts = self._own_hosts | {own[0]}
        return [a for a in addresses if not (a[1] == own[1] and a[0] in own_hosts)]

    async def forward(
        self, body: bytes, credential: tuple[bytes, bytes] | None, own: Address | None
    ) -> list[bytes | None]:
        """POST `body` to every peer at once; each peer's answer body (None: no answer)."""
        addresses = await self.addresses(own)
        if not addresses:
            return []
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=TIMEOUT)
        headers = {"content-type": "application/json", FORWARDED.decode(): "1"}
        if credential is not None:
            headers[credential[0].decode("latin-1")] = credential[1].decode("latin-1")
        return list(await asyncio.gather(*(self._post(a, body, headers) for a in addresses)))

    async def _post(self, address: Address, body: bytes, headers: dict[str, str]) -> bytes | None:
        host = f"[{address[0]}]" if ":" in address[0] else address[0]
        url = f"http://{host}:{address[1]}/feedback"
        assert self._client is not None
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as error:
            log.warning("feedback peer %s did not answer: %r", url, error)
            return None
        if response.status_code not in (200, 404, 409, 422):
            log.warning("feedback peer %s answered %d", url, response.status_code)
            return None
        return response.content
