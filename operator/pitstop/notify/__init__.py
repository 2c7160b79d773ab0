"""Notifications: webhooks told of rollout transitions (pure `transitions` and
`payload`; `sender` delivers them off the reconcile's path)."""
