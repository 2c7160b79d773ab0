"""Analysis: from raw measurements to a verdict on the candidate. Pure: no I/O here.

`samples` parses a model server's /metrics, `window` turns two scrapes into the
numbers of one interval, `verdict` holds measurements against the spec's limits and
counts failures against `failureLimit`.
"""
