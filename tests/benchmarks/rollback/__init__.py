"""Rollback benchmark: how fast a failing candidate loses its traffic, and how many user
requests it answered first. Run `pytest tests/benchmarks/rollback -m benchmark -s`."""
