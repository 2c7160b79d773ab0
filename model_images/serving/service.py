"""The Pitstop serving template: one BentoML service that serves any Pitstop package.

Which package, and every other setting, comes from `PITSTOP_*` environment variables
(see model_images/README.md for the contract with the operator). The service class
only starts the runtime; requests are answered by `pitstop_serving.app.Middleware`,
added in front of BentoML's router, and BentoML's own access log, metrics and
tracing spans are switched off for those paths because the template provides its own
and they would otherwise cost more than a cheap model's prediction.
"""

from __future__ import annotations

import bentoml
from pitstop_serving import app

runtime = app.Runtime()


@bentoml.service(
    name="pitstop",
    workers=1,
    metrics={"enabled": False},
    logging={"access": {"enabled": False}},
    tracing={"excluded_urls": app.PATHS_REGEX},
)
class Pitstop:
    """Loads the package named by PITSTOP_MODEL in the background on start."""

    def __init__(self) -> None:
        runtime.start()


Pitstop.add_asgi_middleware(app.Middleware, runtime=runtime)  # type: ignore[attr-defined]
