"""Property: no generated request body makes the template answer 5xx."""

from __future__ import annotations

import json

import local_http
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving_cluster import Cluster
from serving_harness import fraud_row

pytestmark = pytest.mark.serving

FIELDS = ["amount", "count", "country", "is_new"]
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from(["de", "fr", "us"])
)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)  # fmt: skip
rows = st.fixed_dictionaries({}, optional={name: values for name in FIELDS}) | st.dictionaries(
    st.sampled_from([*FIELDS, "other", ""]), values, max_size=6
)
mutated = st.builds(lambda key, value: {**fraud_row(), key: value}, st.sampled_from(FIELDS), values)
documents = mutated | rows | st.lists(mutated | rows, max_size=5) | values


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(document=documents)
def test_generated_json_is_never_a_server_error(cluster: Cluster, document: object) -> None:
    content = json.dumps(document, allow_nan=True).encode()
    response = local_http.post(f"{cluster.open.url}/predict", content=content, timeout=10)
    assert response.status_code < 500, (content, response.text)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=st.binary(max_size=64))
def test_arbitrary_bytes_are_never_a_server_error(cluster: Cluster, content: bytes) -> None:
    response = local_http.post(f"{cluster.open.url}/predict", content=content, timeout=10)
    assert response.status_code < 500, (content, response.text)
