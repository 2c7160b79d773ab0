"""The ModelDeployment API: pydantic models that are the single source of truth.

The CRD in `crds/` is generated from these models (`crd.py`), and the operator parses
every object it reads through them. This layer is pure: it imports neither kopf nor
kubernetes.
"""
