"""The Open Inference Protocol (V2) beside the native API, over real HTTP.

The client is Triton's own (`tritonclient.http`), as a user of another V2 server
would call us: metadata, health, inference with JSON and with binary tensors. Its
answers must be the native API's for the same rows, refused for the same reasons
(with V2's names for the fields), and counted, drifted and mirrored the same.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import local_http
import numpy as np
import pytest
from serving_cluster import KEYS, Cluster
from serving_harness import fraud_row, metric, wait_for

# geventhttpclient, under tritonclient, needs gevent; importing it warns of nothing
# in this process (no monkey-patching), and every call below is synchronous.
from tritonclient import http as triton
from tritonclient.utils import InferenceServerException

pytestmark = pytest.mark.serving

ROWS = [
    fraud_row(),
    fraud_row(amount=60.0, count=0, country="us"),
    fraud_row(amount=180.0, count=9, country="fr", is_new=True),
]


def client(url: str) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(url.removeprefix("http://"))


def fraud_inputs(rows: list[dict[str, Any]], *, binary: bool = True) -> list[triton.InferInput]:
    columns = {
        "amount": (np.array([r["amount"] for r in rows], dtype=np.float64), "FP64"),
        "count": (np.array([r["count"] for r in rows], dtype=np.int64), "INT64"),
        "country": (np.array([r["country"] for r in rows], dtype=np.object_), "BYTES"),
        "is_new": (np.array([r["is_new"] for r in rows], dtype=np.bool_), "BOOL"),
    }
    found = []
    for name, (values, datatype) in columns.items():
        tensor = triton.InferInput(name, list(values.shape), datatype)
        tensor.set_data_from_numpy(values, binary_data=binary)
        found.append(tensor)
    return found


def infer_json(url: str, body: dict[str, Any], model: str = "fraud") -> httpx.Response:
    return local_http.post(f"{url}/v2/models/{model}/infer", json=body, timeout=10)


def column(name: str, datatype: str, data: list[Any], shape: list[int] | None = None) -> Any:
    return {"name": name, "datatype": datatype, "shape": shape or [len(data)], "data": data}


def fraud_body(rows: list[dict[str, Any]]) -> dict[str, Any]:
    types = {"amount": "FP64", "count": "INT64", "country": "BYTES", "is_new": "BOOL"}
    return {"inputs": [column(n, t, [r[n] for r in rows]) for n, t in types.items()]}


def test_metadata_and_health_come_from_the_signature(cluster: Cluster) -> None:
    peer = client(cluster.open.url)
    assert peer.is_server_live()
    assert peer.is_server_ready()
    assert peer.is_model_ready("fraud")
    assert peer.is_model_ready("fraud", "1")
    assert not peer.is_model_ready("nope")
    server = peer.get_server_metadata()
    assert server["name"] == "pitstop"
    assert server["extensions"] == ["binary_tensor_data"]

    meta = peer.get_model_metadata("fraud")
    signature = local_http.get(f"{cluster.open.url}/signature").json()["signature"]
    assert meta["name"] == "fraud"
    assert meta["versions"] == ["1"]
    assert [i["name"] for i in meta["inputs"]] == [f["name"] for f in signature["features"]]
    assert [i["datatype"] for i in meta["inputs"]] == ["FP64", "INT64", "BYTES", "BOOL"]
    assert meta["outputs"] == [
        {"name": "predictions", "datatype": "BYTES", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP64", "shape": [-1, 2]},
    ]
    regressor = client(cluster.price.url).get_model_metadata("price")
    assert regressor["outputs"] == [{"name": "predictions", "datatype": "FP64", "shape": [-1]}]


@pytest.mark.parametrize("binary", [True, False], ids=["binary-tensors", "json-tensors"])
def test_triton_client_gets_the_native_answers(cluster: Cluster, binary: bool) -> None:
    native = local_http.post(f"{cluster.open.url}/predict", json=ROWS, timeout=10).json()
    result = client(cluster.open.url).infer(
        "fraud", fraud_inputs(ROWS, binary=binary), request_id="case-7"
    )

    answer = result.get_response()
    assert answer["model_name"] == "fraud"
    assert answer["model_version"] == "1"
    assert answer["id"] == "case-7"
    predictions = result.as_numpy("predictions")
    assert [p.decode() if isinstance(p, bytes) else p for p in predictions] == native["predictions"]
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (3, 2)
    assert probabilities.tolist() == native["probabilities"]


def test_outputs_asked_for_are_the_only_ones_answered(cluster: Cluster) -> None:
    asked = [triton.InferRequestedOutput("probabilities", binary_data=False)]
    result = client(cluster.open.url).infer("fraud", fraud_inputs(ROWS), outputs=asked)
    assert [o["name"] for o in result.get_response()["outputs"]] == ["probabilities"]


def test_a_regressor_answers_by_column_and_as_one_matrix(cluster: Cluster) -> None:
    rows = [{"size": 70.0, "rooms": 2}, {"size": 120.5, "rooms": 5}]
    native = local_http.post(f"{cluster.price.url}/predict", json=rows, timeout=10).json()
    size = triton.InferInput("size", [2], "FP32")
    size.set_data_from_numpy(np.array([70.0, 120.5], dtype=np.float32))
    rooms = triton.InferInput("rooms", [2], "INT32")
    rooms.set_data_from_numpy(np.array([2, 5], dtype=np.int32))
    by_column = client(cluster.price.url).infer("price", [size, rooms])
    assert by_column.as_numpy("predictions").tolist() == native["predictions"]

    # All-numeric features: one [N, 2] input named like the model, in signature order.
    matrix = triton.InferInput("price", [2, 2], "FP64")
    matrix.set_data_from_numpy(np.array([[70.0, 2], [120.5, 5]], dtype=np.float64))
    by_matrix = client(cluster.price.url).infer("price", [matrix])
    assert by_matrix.as_numpy("predictions").tolist() == native["predictions"]


def _set(index: int, key: str, value: Any) -> Any:
    return lambda body: body["inputs"][index].update({key: value})


def _put(index: int, row: int, value: Any) -> Any:
    return lambda body: body["inputs"][index]["data"].__setitem__(row, value)


def _longer(index: int) -> Any:
    def change(body: dict[str, Any]) -> None:
        body["inputs"][index]["data"].append("de")
        body["inputs"][index]["shape"] = [len(ROWS) + 1]

    return change


BAD_TENSORS = {
    # case: (change to a valid body, the field named in the 422, the metric label)
    "missing-input": (lambda body: body["inputs"].pop(1), "inputs.count", "count"),
    "wrong-datatype": (_set(0, "datatype", "BYTES"), "inputs[0].datatype", "amount"),
    "wrong-shape": (_set(3, "shape", [3, 2]), "inputs[3].shape", "is_new"),
    "rows-of-different-lengths": (_longer(2), "inputs[2].shape", "country"),
    "bad-category": (_put(2, 1, "atlantis"), "inputs[2].data[1]", "country"),
    "a-float-for-an-integer": (_put(1, 2, 2.5), "inputs[1].data[2]", "count"),
}


@pytest.mark.parametrize(("change", "field", "label"), BAD_TENSORS.values(), ids=BAD_TENSORS)
def test_bad_tensors_are_422_naming_the_field_as_v2_sees_it(
    cluster: Cluster, change: Any, field: str, label: str
) -> None:
    body = fraud_body(ROWS)
    change(body)
    before = local_http.get(f"{cluster.open.url}/metrics").text
    response = infer_json(cluster.open.url, body)

    assert response.status_code == 422, response.text
    answer = response.json()
    assert field in answer["error"]
    assert answer["detail"][0]["field"] == field
    after = local_http.get(f"{cluster.open.url}/metrics").text
    # The same failure metric as /predict, labelled with the feature, never the path.
    failures = "pitstop_validation_failures_total"
    assert metric(after, failures, field=label) == metric(before, failures, field=label) + 1


def test_triton_client_reads_the_refusal(cluster: Cluster) -> None:
    """Triton's client reads the message from `error`, as from any V2 server."""
    without = fraud_inputs(ROWS)[:3]
    with pytest.raises(InferenceServerException, match=r"inputs\.is_new") as raised:
        client(cluster.open.url).infer("fraud", without)
    assert raised.value.status() == "422"


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b"", 400),
        (b"{not json", 400),
        (b'{"inputs": [{"name": "amount", "datatype": "FP64", "shape": [1], "data": [NaN]}]}', 400),
        (b"[]", 422),
        (b'{"inputs": []}', 422),
        (b'{"inputs": [{"name": "amount"}]}', 422),
        (b'{"inputs": "x"}', 422),
    ],
)
def test_malformed_bodies_are_4xx_never_500(cluster: Cluster, content: bytes, status: int) -> None:
    response = local_http.post(f"{cluster.open.url}/v2/models/fraud/infer", content=content)
    assert response.status_code == status, response.text
    assert response.json()["error"]


def test_an_unknown_model_is_404(cluster: Cluster) -> None:
    peer = client(cluster.open.url)
    with pytest.raises(InferenceServerException) as raised:
        peer.infer("nope", fraud_inputs(ROWS))
    assert raised.value.status() == "404"
    with pytest.raises(InferenceServerException) as raised:
        peer.get_model_metadata("nope")
    assert raised.value.status() == "404"
    with pytest.raises(InferenceServerException) as raised:
        peer.infer("fraud", fraud_inputs(ROWS), model_version="9")
    assert raised.value.status() == "404"
    assert local_http.get(f"{cluster.open.url}/v2/elsewhere").status_code == 404


def test_v2_answers_are_counted_as_predictions_and_drift(cluster: Cluster) -> None:
    url = cluster.same.url
    before_text = local_http.get(f"{url}/metrics").text
    before = local_http.get(f"{url}/evidence").json()
    client(url).infer("fraud", fraud_inputs(ROWS))
    assert infer_json(url, {"inputs": []}).status_code == 422
    after_text = local_http.get(f"{url}/metrics").text
    after = local_http.get(f"{url}/evidence").json()

    requests = "pitstop_requests_total"
    for code in ("200", "422"):
        was = metric(before_text, requests, endpoint="predict", code=code)
        assert metric(after_text, requests, endpoint="predict", code=code) == was + 1
    rows = "pitstop_predicted_rows_total"
    assert metric(after_text, rows) == metric(before_text, rows) + 3
    assert after["predict"]["requests"] == before["predict"]["requests"] + 2
    assert after["drift"]["rows"] == before["drift"]["rows"] + 3


def test_with_auth_on_v2_needs_a_key_except_for_health(cluster: Cluster) -> None:
    url = cluster.guarded.url
    response = infer_json(url, fraud_body(ROWS[:1]))
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert local_http.get(f"{url}/v2/models/fraud").status_code == 401
    assert local_http.get(f"{url}/v2/health/live").status_code == 200
    assert local_http.get(f"{url}/v2/health/ready").status_code == 200
    headers = {"Authorization": f"Bearer {KEYS['alice']}"}
    meta = client(url).get_model_metadata("fraud", headers=headers)
    assert meta["name"] == "fraud"
    # The guarded server throttles (1 rps, burst 5): a 429 is a refusal of the same kind.
    wait_for(lambda: client_infer(url, headers) == 200, 30, "an authenticated V2 answer")


def client_infer(url: str, headers: dict[str, str]) -> int:
    try:
        client(url).infer("fraud", fraud_inputs(ROWS[:1]), headers=headers)
    except InferenceServerException as refused:
        if refused.status() != "429":
            raise
        return 429
    return 200


@pytest.fixture
def mirror_to_same(cluster: Cluster) -> Any:
    cluster.mirror_file.write_text(
        json.dumps({"url": f"{cluster.same.url}/predict", "percent": 100})
    )
    yield
    cluster.mirror_file.write_text("{}")


@pytest.mark.usefixtures("mirror_to_same")
def test_a_v2_request_is_mirrored_as_native_rows_and_agrees(cluster: Cluster) -> None:
    def shadow(outcome: str) -> float:
        text = local_http.get(f"{cluster.open.url}/metrics").text
        return metric(text, "pitstop_shadow_requests_total", outcome=outcome)

    def received() -> float:
        return float(local_http.get(f"{cluster.same.url}/evidence").json()["predict"]["requests"])

    agreed, disagreed, copies = shadow("agree"), shadow("disagree"), received()
    peer = client(cluster.open.url)

    def counted() -> bool:
        peer.infer("fraud", fraud_inputs(ROWS))
        return shadow("agree") >= agreed + 3

    wait_for(counted, 30, "V2 requests mirrored to the shadow and agreed")
    assert shadow("disagree") == disagreed
    assert received() >= copies + 3  # the shadow answered them on its native /predict


def test_a_v2_answer_names_its_model_version_in_a_header_too(cluster: Cluster) -> None:
    answer = infer_json(cluster.other.url, fraud_body(ROWS[:1]))
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-pitstop-model-version"] == answer.json()["model_version"] == "2"
