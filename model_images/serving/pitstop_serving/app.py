"""The ASGI front of the template: routes, and the order of checks per request.

`Middleware` wraps the ASGI app BentoML builds and answers the Pitstop paths itself
(everything else goes on to BentoML), so a prediction pays for none of BentoML's
per-request machinery. Order on `POST /predict`: authenticate (401/403, or 503 while
auth is required but no key is readable) -> throttle (429) -> ready? (503) -> read
and validate the body (400/413/422) -> predict -> check the output (500) -> answer
-> metrics, drift window, log line -> feedback log -> queue the mirror copy.
Everything after the answer is off the client's clock.

The Open Inference Protocol (V2, see `v2`) is a second face of the same pipeline:
`POST /v2/models/{name}/infer` is `/predict` with the body translated to native rows
first and the answer translated back last. Auth, throttling, validation, the metrics
(endpoint "predict": the operator's judge and drift window count V2 traffic as native
traffic), the evidence, the feedback log, the access log and the mirror are the
native ones. The mirror sends the translated *native* body to the shadow's /predict
and compares its answer with our native answer, so V2 traffic is judged exactly as
native traffic is (a shadow need not speak V2).

`POST /feedback` (true outcomes for earlier predictions, see `feedback`):
authenticate as /predict -> ready? (503) -> feedback on? (404) -> read and parse the
body (400/413/422) -> count what this worker's log holds -> ask the peers (`peers`)
about the rest, unless the request is itself forwarded -> answer.
"""

from __future__ import annotations

import gc
import json
import logging
import math
import random
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from pitstop.packaging import drift

from pitstop_serving import (
    accesslog,
    auth,
    batching,
    config,
    evidence,
    feedback,
    inputs,
    metrics,
    mirror,
    outputs,
    peers,
    predictor,
    v2,
)
from pitstop_serving import throttle as throttle_

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Answered here, and every path under /v2 (the Open Inference Protocol, see `v2.route`).
PATHS = ("/predict", "/feedback", "/livez", "/readyz", "/metrics", "/evidence", "/signature")
JSON = b"application/json"
log = logging.getLogger("pitstop.runtime")
_ids = random.Random()  # seeded from os.urandom once


class ClientGone(Exception):
    pass


class Runtime:
    """Everything one worker needs, loaded in the background by `start`."""

    def __init__(self) -> None:
        self.metrics = metrics.Metrics()
        self.evidence = evidence.Evidence()
        self.ready = False
        self.error: str | None = None
        self.config: config.Config | None = None
        self.batcher: batching.Batcher | None = None  # micro-batching, when asked for
        self.feedback: feedback.Log | None = None  # once loaded, unless feedback is off
        self.peers: peers.Peers | None = None
        self.package: dict[str, Any] | None = None  # what is served, for /evidence
        # Headers naming who answers a prediction: the revision, when the operator names
        # it, and the package's version, once loaded (`naming_headers`).
        self.revision: list[tuple[bytes, bytes]] = []
        self.named: list[tuple[bytes, bytes]] = []

    def start(self, cfg: config.Config | None = None) -> None:
        self.config = cfg = cfg or config.from_environ()
        self.keys = auth.KeyStore(cfg.api_keys_dir, cfg.auth_required)
        self.keys.refresh(time.monotonic())
        self.buckets = throttle_.Buckets(cfg.rate_limit_rps, cfg.rate_limit_burst)
        self.log = accesslog.AccessLog(cfg.access_log)
        self.mirror = mirror.Mirror(cfg.mirror_config, self.metrics, self._shadow_answered)
        if cfg.revision:
            self.revision = [(b"x-pitstop-revision", cfg.revision.encode("latin-1"))]
        self.named = self.revision
        try:
            targets, listing = peers.parse_spec(cfg.feedback_peers)
        except ValueError as error:
            raise config.ConfigError(f"PITSTOP_FEEDBACK_PEERS: {error}") from None
        if targets or listing is not None:
            self.peers = peers.Peers(targets, listing)
        threading.Thread(target=self._load, name="pitstop-load", daemon=True).start()

    def _load(self) -> None:
        assert self.config is not None
        try:
            folder = predictor.package_folder(self.config.model)
            self.predictor = predictor.Predictor(folder)
            self.schema = inputs.Schema(self.predictor.signature, self.config.max_batch)
            self.window = drift.Window(self.predictor.manifest.profile, self.config.drift_window)
            self.description = self.predictor.describe(self.schema.json_schema())
            manifest = self.predictor.manifest
            self.v2 = v2.Protocol(self.predictor.signature, manifest.name, manifest.version)
            self.metrics.add_drift(lambda: (self.window.scores(), self.window.filled))
            if self.config.feedback_retain > 0:
                outcomes = feedback.Outcomes(
                    self.predictor.kind, self.predictor.signature.output.classes
                )
                self.feedback = feedback.Log(
                    self.config.feedback_retain, outcomes, self.config.max_batch
                )
                self.metrics.add_feedback(self.feedback)
            if self.config.batch_wait_ms > 0:
                self.batcher = batching.Batcher(
                    self.predictor,
                    self.config.batch_wait_ms / 1000,
                    self.config.batch_max_rows,
                    self.metrics.batch_rows.labels(),
                    batchable=self.predictor.manifest.batchable,
                )
            m = self.predictor.manifest
            self.named = self.revision + naming_headers(m.version)
            self.metrics.info.labels(m.name, m.version, m.digest).set(1)
            self.package = {
                "name": m.name, "version": m.version, "digest": m.digest,
                "data": {"uri": m.data.uri, "sha256": m.data.sha256, "rows": m.data.rows},
            }  # fmt: skip
        except Exception as error:
            self.error = f"cannot load package {self.config.model or 'of the bento'}: {error}"
            log.exception(self.error)
            return
        # BentoML, numpy, sklearn and pydantic leave ~250k long-lived objects behind;
        # full collections scanning them were the template's p99 (150-230 ms pauses).
        # Freezing moves them out of the collector's sight; request garbage is young.
        gc.collect()
        gc.freeze()
        self.metrics.ready.set(1)
        self.ready = True
        log.info(
            "serving %s (%s), %s input",
            m.tag,
            m.digest,
            "matrix" if self.predictor.matrix_input else "frame",
        )

    def _shadow_answered(self, request_id: bytes, predictions: Any) -> None:
        if self.feedback is not None:
            self.feedback.shadow_answered(request_id, predictions)


def naming_headers(version: str) -> list[tuple[bytes, bytes]]:
    """`x-pitstop-model-version`, the served package's version, on every prediction answer:
    a client (or a proxy's log) behind a Service that splits traffic between revisions
    sees which model answered, as V2 answers say in `model_version`. Omitted for a
    version a header cannot carry (outside printable ASCII)."""
    if not version or not all(" " <= c <= "~" for c in version):
        return []
    return [(b"x-pitstop-model-version", version.encode("ascii"))]


async def _answer(
    send: Send, status: int, body: bytes, request_id: bytes, extra: list[tuple[bytes, bytes]]
) -> None:
    headers = [
        (b"content-type", JSON),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _error(message: str, detail: list[Any] | None = None) -> bytes:
    return json.dumps({"error": message, "detail": detail or []}).encode()


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise inputs.Invalid(413, f"the body exceeds {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class Middleware:
    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime
        self.routes: dict[str, Callable[[Scope, Receive, Send], Awaitable[None]]] = {
            "/predict": self.predict,
            "/feedback": self.take_feedback,
            "/livez": self.livez,
            "/readyz": self.readyz,
            "/metrics": self.metrics,
            "/evidence": self.evidence,
            "/signature": self.signature,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            route = self.routes.get(path)
            if route is not None:
                await route(scope, receive, send)
                return
            if path.startswith(v2.PREFIX) and (len(path) == 3 or path[3] == "/"):
                await self.open_inference(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _simple(
        self, send: Send, endpoint: str, status: int, body: bytes, content_type: bytes = JSON
    ) -> None:
        started = time.perf_counter()
        headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self.runtime.metrics.observe(endpoint, status, time.perf_counter() - started)

    async def livez(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._simple(send, "livez", 200, b'{"status":"alive"}')

    async def readyz(
        self, scope: Scope, receive: Receive, send: Send, not_ready: int = 503
    ) -> None:
        rt = self.runtime
        # Unready pods get no traffic, so no /predict would re-read the keys: the probe
        # does, and so notices keys that appeared.
        rt.keys.refresh(time.monotonic())
        if rt.ready and rt.keys.problem is None:
            await self._simple(send, "readyz", 200, b'{"status":"ready"}')
            return
        if rt.error:
            status, error = "failed", rt.error
        elif rt.keys.problem is not None:
            status, error = "no-keys", rt.keys.problem
        else:
            status, error = "loading", None
        body = json.dumps({"status": status, "error": error}).encode()
        await self._simple(send, "readyz", not_ready, body)

    async def _refused(self, scope: Scope, send: Send, endpoint: str, *, scrape: bool) -> bool:
        """Answer a request these API keys do not let in (see `auth`); False: let in."""
        keys = self.runtime.keys
        keys.refresh(time.monotonic())
        if not keys.enabled and keys.problem is None:
            return False  # auth off: the common case costs one refresh check
        status, why, extra, _ = auth.check(keys, auth.presented(scope["headers"]), scrape=scrape)
        if status == 200:
            return False
        started = time.perf_counter()
        body = _error(why or "refused")
        headers = [(b"content-type", JSON), (b"content-length", str(len(body)).encode()), *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self.runtime.metrics.observe(endpoint, status, time.perf_counter() - started)
        return True

    async def metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        if await self._refused(scope, send, "metrics", scrape=True):
            return
        body = self.runtime.metrics.exposition()
        await self._simple(send, "metrics", 200, body, metrics.CONTENT_TYPE.encode())

    async def evidence(self, scope: Scope, receive: Receive, send: Send) -> None:
        if await self._refused(scope, send, "evidence", scrape=True):
            return
        rt = self.runtime
        body = rt.evidence.body(rt.metrics, rt.window if rt.ready else None, rt.feedback,
                                rt.package if rt.ready else None)  # fmt: skip
        await self._simple(send, "evidence", 200, body)

    async def signature(self, scope: Scope, receive: Receive, send: Send) -> None:
        if await self._refused(scope, send, "signature", scrape=False):
            return
        rt = self.runtime
        if rt.ready:
            await self._simple(send, "signature", 200, rt.description)
        else:
            await self._simple(send, "signature", 503, _error("the model is not loaded yet"))

    async def open_inference(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The V2 paths: health and metadata here, inference by `_predict`."""
        found = v2.route(scope["path"])
        rt = self.runtime
        if found is not None and found.what == "infer":
            await self._predict(scope, receive, send, found)
            return
        if found is None:
            await self._simple(send, "v2", 404, _error(f"no V2 path {scope['path']}"))
            return
        if found.what == "live":
            await self.livez(scope, receive, send)
            return
        if found.what == "ready" and found.model == "":
            await self.readyz(scope, receive, send, not_ready=400)
            return
        if await self._refused(scope, send, "v2", scrape=False):
            return
        if not rt.ready:
            # The protocol answers "not ready" with a 4xx (a 5xx for metadata).
            status = 400 if found.what == "model-ready" else 503
            await self._simple(
                send, "v2", status, _error(rt.error or "the model is not loaded yet")
            )
        elif found.what == "server":
            await self._simple(send, "v2", 200, rt.v2.server_metadata())
        elif not rt.v2.serves(found):
            await self._simple(send, "v2", 404, _error(f"no model {found.model!r} here"))
        elif found.what == "model":
            await self._simple(send, "v2", 200, rt.v2.metadata())
        else:
            await self._simple(send, "v2", 200, b'{"status":"ready"}')

    async def predict(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._predict(scope, receive, send, None)

    async def _predict(
        self, scope: Scope, receive: Receive, send: Send, target: v2.Route | None
    ) -> None:
        """POST /predict, or a V2 infer (`target`): one pipeline, two encodings."""
        started = time.perf_counter()
        rt = self.runtime
        request_id: bytes | None = None
        header_length: int | None = None
        request: v2.Request | None = None
        presented: bytes | None = None
        credential: tuple[bytes, bytes] | None = None
        is_copy = generated = False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                if 0 < len(value) <= 128:
                    request_id = value
            elif name == b"authorization":
                if value[:7].lower() == b"bearer ":
                    presented = value[7:].strip()
                    credential = (name, value)
            elif name == b"x-api-key":
                presented = value.strip()
                credential = (name, value)
            elif name == b"x-pitstop-mirror":
                is_copy = True
            elif name == b"x-pitstop-generated":
                generated = True
            elif name == b"inference-header-content-length" and target is not None:
                header_length = int(value) if value.isdigit() else -1
        if request_id is None:
            # Unique enough to find a request's line (not a secret): no syscall per
            # request, as os.urandom would cost.
            request_id = b"%016x" % _ids.getrandbits(64)
        status, rows, key_id, failure = 200, 0, "", None
        extra: list[tuple[bytes, bytes]] = []
        body = b""
        result: dict[str, Any] | None = None
        try:
            if scope["method"] != "POST":
                status, failure = 405, "use POST"
                extra = [(b"allow", b"POST")]
            else:
                now = time.monotonic()
                rt.keys.refresh(now)
                status, failure, extra, key_id = auth.check(rt.keys, presented, scrape=False)
                if status == 200 and rt.buckets.enabled:
                    wait = rt.buckets.take(key_id, now)
                    if wait > 0:
                        status, failure = 429, "rate limit exceeded"
                        extra = [(b"retry-after", str(max(1, math.ceil(wait))).encode())]
                if status == 200 and not rt.ready:
                    status, failure = 503, rt.error or "the model is not loaded yet"
                if status == 200 and target is not None and not rt.v2.serves(target):
                    status, failure = 404, f"no model {target.model!r} here"
                if status == 200:
                    body = await _read_body(receive, rt.config.max_body_bytes)  # type: ignore[union-attr]
                    if target is not None:
                        request = rt.v2.decode(body, header_length)
                        body = request.native  # what is parsed, logged and mirrored
                    try:
                        parsed = rt.schema.parse(body)
                    except inputs.Invalid as invalid:
                        if request is None:
                            raise
                        raise rt.v2.rename(invalid, request) from None
                    rows = len(parsed)
                    if rt.batcher is not None:
                        model_input = None
                        result = await rt.batcher.predict(parsed)
                    else:
                        model_input = rt.predictor.model_input(parsed)
                        result = rt.predictor.predict(model_input)
        except inputs.Invalid as invalid:
            status, failure = invalid.status, invalid.message
            counter = rt.metrics.validation_failures
            for problem in invalid.problems:
                counter.labels(problem.field).inc()
            payload = json.dumps(invalid.body()).encode()
        except outputs.InvalidOutput as refused:
            status, failure = 500, f"model output refused: {refused.message}"
            rt.metrics.output_failures.labels(refused.reason).inc()
        except ClientGone:
            return
        except Exception as error:
            status, failure = 500, "the model failed to predict"
            log.exception("prediction failed (request %s): %r", request_id.decode("latin-1"), error)
        if result is not None:
            payload = json.dumps(result).encode()  # the native answer: the mirror's reference
        elif status not in (400, 413, 422):
            payload = _error(failure or "error")
        answer = payload if request is None or result is None else rt.v2.encode(result, request)
        # The time this server spent on the request (a mirroring primary reads it as the
        # shadow's latency: its own clock only sees when it got round to reading).
        extra.append((b"server-timing", b"app;dur=%.3f" % ((time.perf_counter() - started) * 1000)))
        await _answer(send, status, answer, request_id, extra + rt.named)
        # The client has its answer; the rest is bookkeeping.
        if result is not None:
            # Load the operator generates (analysis.load) is drawn from the training
            # profile: drift evidence must come from what real users send.
            if generated:
                pass
            elif rt.predictor.matrix_input:
                rt.window.add(model_input if model_input is not None else inputs.matrix(parsed))
            else:
                rt.window.add(rt.window.encode(parsed))
            predictions = result["predictions"]
            if rt.predictor.kind == "values":
                rt.metrics.regressed(predictions)
            else:
                rt.metrics.predicted(predictions)
        elapsed = time.perf_counter() - started
        rt.metrics.observe("predict", status, elapsed)
        rt.evidence.observe(status, elapsed)
        if rt.log.enabled:
            client = scope.get("client")
            rt.log.write(
                {
                    "request_id": request_id.decode("latin-1"),
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                    "rows": rows,
                    "key": key_id or None,
                    "client": client[0] if client else None,
                    "error": failure,
                }
            )
        # A copy is never copied again: two revisions mirroring to each other (or one
        # to itself) must not loop. Nor logged for feedback: the primary that sent it
        # holds its id and counts the shadow's answer itself.
        if result is not None and not is_copy:
            if rt.feedback is not None:
                rt.feedback.record(request_id, result["predictions"])
            rt.mirror.refresh(time.monotonic())
            if rt.mirror.sampled():
                forwarded = b"X-Pitstop-Mirror: 1\r\nX-Request-ID: " + request_id + b"\r\n"
                if credential is not None:
                    forwarded += credential[0] + b": " + credential[1] + b"\r\n"
                if generated:
                    forwarded += b"X-Pitstop-Generated: 1\r\n"
                rt.mirror.submit(body, forwarded, payload, request_id)

    async def take_feedback(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        rt = self.runtime
        credential: tuple[bytes, bytes] | None = None
        forwarded = False
        for name, value in scope["headers"]:
            if name in (b"authorization", b"x-api-key"):
                credential = (name, value)
            elif name == peers.FORWARDED:
                forwarded = True
        extra: list[tuple[bytes, bytes]] = []
        status, payload = 200, b""
        try:
            if scope["method"] != "POST":
                status, payload = 405, _error("use POST")
                extra = [(b"allow", b"POST")]
            else:
                rt.keys.refresh(time.monotonic())
                presented = auth.presented(scope["headers"])
                status, why, extra, _ = auth.check(rt.keys, presented, scrape=False)
                if status != 200:
                    payload = _error(why or "refused")
                elif not rt.ready:
                    status, payload = 503, _error(rt.error or "the model is not loaded yet")
                elif rt.feedback is None:
                    status, payload = 404, _error("feedback is off (PITSTOP_FEEDBACK_RETAIN=0)")
                else:
                    body = await _read_body(receive, rt.config.max_body_bytes)  # type: ignore[union-attr]
                    status, payload = await self._feedback(
                        rt.feedback, body, forwarded, credential, scope.get("server")
                    )
        except (inputs.Invalid, feedback.Refused) as refused:
            status, payload = refused.status, _error(refused.message)
        except ClientGone:
            return
        except Exception as error:
            status, payload = 500, _error("feedback failed")
            log.exception("feedback failed: %r", error)
        headers = [(b"content-type", JSON), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers + extra})
        await send({"type": "http.response.body", "body": payload})
        rt.metrics.observe("feedback", status, time.perf_counter() - started)

    async def _feedback(
        self,
        held: feedback.Log,
        body: bytes,
        forwarded: bool,
        credential: tuple[bytes, bytes] | None,
        server: tuple[str, int] | None,
    ) -> tuple[int, bytes]:
        request = feedback.parse(body, held.outcomes)
        results = held.apply(request)
        if forwarded:
            # A peer's question: answered from this log only, and tallied where the
            # client's request landed.
            return feedback.answer(request, results)
        peers_ = self.runtime.peers
        positions = feedback.unresolved(request, results) if peers_ is not None else []
        if peers_ is not None and positions:
            bodies = await peers_.forward(
                feedback.forward_body(request, positions),
                credential,
                (server[0], int(server[1])) if server else None,
            )
            answers = [feedback.read_answer(b, len(positions)) for b in bodies]
            results = feedback.merge(results, positions, answers)
        held.tally(results)
        return feedback.answer(request, results)
