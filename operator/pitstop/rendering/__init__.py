"""Pure renderers: spec in, Kubernetes object dicts out. No I/O, no kopf, no kubernetes."""
