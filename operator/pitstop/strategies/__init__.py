"""Pure rollout decisions: (spec, status, observations, now) -> Decision.

Nothing here performs I/O or imports kopf/kubernetes; the reconciler gathers the
observations, calls a strategy and carries out the actions it returns.
"""
