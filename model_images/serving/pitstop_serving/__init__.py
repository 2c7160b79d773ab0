"""The Pitstop serving template's runtime: everything behind `service.py`.

Requests are answered by one ASGI middleware (`app.Middleware`) placed in front of
BentoML's router, so the hot path is plain ASGI code whose every step (auth,
throttling, validation, prediction, output checks, metrics, drift, logging,
mirroring) is precomputed at load time and costs microseconds per request.
"""
