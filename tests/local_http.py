"""The tests' plain-HTTP calls to the servers they start, through one shared client.

`httpx.get(url)` builds a whole `httpx.Client` for the one call, and with it an SSL
context loaded from certifi's bundle: about 45 ms of CPU on these machines, for a call
to `http://127.x.y.z` that never uses TLS. The e2e kubelet emulator probes a starting
model server five times a second; at that price its probes alone took a tenth of a core
while pods came up, and the suite is CPU-bound on two cores.

The shared client keeps no connection alive (`max_keepalive_connections=0`), so each
call still opens and closes its own connection, as `httpx.get` did: servers restart
between tests on other ports, and tests that count what a server saw are unchanged.
`httpx.Client` is safe to share between threads.
"""

from __future__ import annotations

import atexit

import httpx

_CLIENT = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0))
atexit.register(_CLIENT.close)

get = _CLIENT.get
post = _CLIENT.post
stream = _CLIENT.stream
