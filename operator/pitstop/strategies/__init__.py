"""Pure rollout decisions: (spec, status, observations, now) -> Decision.

Nothing here performs I/O or imports kopf/kubernetes; the reconciler gathers the
observations, calls `engine.decide` and carries out the actions it returns. The
strategy modules register with the engine when this package is imported.
"""

from pitstop.strategies import bluegreen, canary, shadow  # noqa: F401  (they register)
