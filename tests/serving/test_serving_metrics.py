"""The template's metric values and mirror comparison, read the way the operator reads them.

Pure: no server. The exposition is parsed by the operator's own parser
(`pitstop.analysis.samples`), so a change in names, labels or bucket semantics on
either side fails here before it fails a rollout.
"""

from __future__ import annotations

import json
import sys

import pytest
from pitstop.analysis import samples
from pitstop.packaging.bento import default_template
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(default_template()))
from pitstop_serving import metrics, mirror


def test_counts_render_as_the_operator_reads_them() -> None:
    m = metrics.Metrics()
    for seconds in (0.0004, 0.001, 0.001, 0.003, 30.0):  # 0.001 is a bound: `le` includes it
        m.observe("predict", 200, seconds)
    m.observe("predict", 503, 0.0001)
    m.observe("readyz", 200, 0.0001)
    m.shadow.labels("agree").inc(3)
    m.shadow.labels("error").inc()

    counters = samples.parse_metrics(m.exposition().decode())

    assert counters.requests == 6
    assert counters.errors == 1
    # Per bucket, as the judge reads them (the exposition's are cumulative).
    buckets = dict(counters.latency)
    assert buckets[0.0005] == 2
    assert buckets[0.001] == 2
    assert buckets[0.002] == 0
    assert buckets[0.005] == 1
    assert buckets[10.0] == 0
    assert buckets[float("inf")] == 1
    assert (counters.agree, counters.disagree, counters.shadow_errors) == (3, 0, 1)


def test_every_family_is_exposed_with_its_type_and_sum() -> None:
    m = metrics.Metrics()
    m.predicted(["fraud", "fraud", "ok"])
    m.regressed([-5.0, 2.0])
    m.validation_failures.labels("amount").inc()
    m.ready.set(1)
    m.info.labels("fraud", "3", "sha256:abc").set(1)

    families = {f.name: f for f in text_string_to_metric_families(m.exposition().decode())}

    assert families["pitstop_requests"].type == "counter"
    assert families["pitstop_request_duration_seconds"].type == "histogram"
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value
              for f in families.values() for s in f.samples}  # fmt: skip
    assert values["pitstop_predictions_total", (("class", "fraud"),)] == 2
    assert values["pitstop_predicted_rows_total", ()] == 5
    assert values["pitstop_prediction_value_sum", ()] == -3.0
    assert values["pitstop_prediction_value_count", ()] == 2
    assert values["pitstop_validation_failures_total", (("field", "amount"),)] == 1
    assert values["pitstop_model_ready", ()] == 1
    assert values["pitstop_shadow_requests_total", (("outcome", "disagree"),)] == 0
    assert values["pitstop_shadow_dropped_total", ()] == 0
    info = (("digest", "sha256:abc"), ("name", "fraud"), ("version", "3"))
    assert values["pitstop_model_info", info] == 1


def test_a_series_needs_all_its_labels() -> None:
    with pytest.raises(ValueError, match="endpoint"):
        metrics.Metrics().requests.labels("predict")


def body(predictions: list[object], **extra: object) -> bytes:
    return json.dumps({"predictions": predictions, **extra}).encode()


@pytest.mark.parametrize(
    ("ours", "theirs", "expected"),
    [
        # Written differently, same predictions: the byte comparison is only a shortcut.
        (body(["fraud"]), b'{"predictions":["fraud"]}', True),
        # Agreement is about the predictions, not the probabilities behind them.
        (body(["a"], probabilities=[[0.9, 0.1]]), body(["a"], probabilities=[[0.6, 0.4]]), True),
        (body(["fraud"]), body(["ok"]), False),
        (body([1.0]), body([1.0 + 1e-9]), True),
        (body([1.0]), body([1.001]), False),
        (body([1]), body([True]), False),
        (body([1, 2]), body([1]), False),
        (body([1]), b"not json", None),
        (body([1]), b'["no", "object"]', None),
    ],
)
def test_answers_are_compared_by_their_predictions(
    ours: bytes, theirs: bytes, expected: bool | None
) -> None:
    assert mirror.compare(ours, theirs, tolerance=1e-6) is expected
