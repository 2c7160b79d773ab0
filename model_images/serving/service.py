"""The Pitstop serving template: one BentoML service that serves any Pitstop package.

Which package, and every other setting, comes from `PITSTOP_*` environment variables
(see model_images/README.md for the contract with the operator). The service class
only starts the runtime; requests are answered by `pitstop_serving.app.Middleware`,
wrapped around the whole ASGI app BentoML builds (outside its error, tracing, timeout
and context middlewares, which cost more per request than a cheap model's
prediction; BentoML's own access log and metrics are switched off too). Every other
path and the lifespan pass through to BentoML unchanged.
"""

from __future__ import annotations

import functools
from typing import Any

import bentoml


@functools.cache
def runtime() -> Any:
    """The one runtime of this process, made on first use.

    `bentoml serve` imports this module twice: in its own process, only to read the
    service's settings before it starts the workers, and in each worker. Importing
    `pitstop_serving.app` (pandas, pydantic, numpy: ≈ 0.6 s of CPU) is left to the
    worker, so a pod is ready that much sooner.
    """
    from pitstop_serving import app

    return app.Runtime()


@bentoml.service(
    name="pitstop",
    workers=1,
    metrics={"enabled": False},
    logging={"access": {"enabled": False}},
)
class Pitstop:
    """Loads the package named by PITSTOP_MODEL in the background on start."""

    def __init__(self) -> None:
        runtime().start()


class _Front(type(Pitstop)):  # type: ignore[misc]
    """BentoML's service, with the Pitstop middleware outermost in its ASGI app.

    `add_asgi_middleware` would place it inside BentoML's stack, where every request
    pays for a task and a timer (timeout middleware), an OpenTelemetry span and
    Starlette's error wrapper before reaching it.
    """

    __slots__ = ()

    def to_asgi(self, *args: Any, **kwargs: Any) -> Any:
        from pitstop_serving import app

        return app.Middleware(super().to_asgi(*args, **kwargs), runtime=runtime())


Pitstop.__class__ = _Front
