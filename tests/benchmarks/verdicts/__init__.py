"""Verdict benchmark: Monte Carlo rollouts through the project's real analysis judge and
rollout engine, beside today's fixed-threshold judge on the same simulated traffic.
Run `python -m tests.benchmarks.verdicts --help`."""
