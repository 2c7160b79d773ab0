"""Serving benchmark: the Pitstop template against bare BentoML, MLServer and a floor.

Run `python -m tests.benchmarks.serving` (see README); not part of the pytest suite.
"""
