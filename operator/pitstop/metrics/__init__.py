"""Metric providers: measure a revision's health over an interval (I/O at the edge).

`builtin` scrapes the model servers' own /metrics (nothing else to install),
`prometheus` runs a PromQL query, `webhook` asks an external check; `smoke` sends the
smoke test; `collect` gathers every metric of a spec into `analysis.verdict.Measurement`s.
"""
