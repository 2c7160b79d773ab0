from __future__ import annotations

import json
from datetime import UTC, datetime

from pitstop.api.resource import ModelDeployment
from pitstop.api.status import Breach, MonitoringStatus
from pitstop.rendering import labels, retrain

JOB = {
    "metadata": {"labels": {"team": "ml"}},
    "spec": {"backoffLimit": 1, "template": {"spec": {"restartPolicy": "Never", "containers": [
        {"name": "train", "image": "reg/train:1", "env": [{"name": "PITSTOP_MODEL", "value": "x"},
                                                          {"name": "KEEP", "value": "1"}]}]}}},
}  # fmt: skip


def md() -> ModelDeployment:
    return ModelDeployment.model_validate({
        "metadata": {"name": "fraud", "namespace": "ml", "uid": "u-1"},
        "spec": {"model": {"name": "fraud", "version": "7"}, "image": "reg/fraud:7",
                 "monitoring": {"metrics": [{"name": "drift", "builtin": "drift", "max": 0.2}],
                                "retrain": {"job": JOB}}},
    })  # fmt: skip


def test_the_job_carries_the_parameters_and_one_name_per_episode() -> None:
    since = datetime(2026, 11, 30, tzinfo=UTC)
    status = MonitoringStatus(revision="r1", episode="drift@x",
                              breaches=[Breach(metric="drift", since=since, value=0.4)])  # fmt: skip
    package = {"digest": "sha256:p", "data": {"uri": "s3://b/train.csv", "sha256": "abc"}}
    params = retrain.parameters(md(), status, "drift 0.4 beyond 0.2", package)
    job = retrain.job(md(), "drift@x", params)
    assert job["metadata"]["name"] == retrain.job_name("fraud", "drift@x")
    assert job["metadata"]["name"] != retrain.job_name("fraud", "drift@y")
    assert job["metadata"]["labels"]["team"] == "ml"
    assert job["metadata"]["labels"][labels.ROLE] == "retrain"
    assert job["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["KEEP"] == "1"
    assert env["PITSTOP_MODEL"] == "fraud"  # the parameters win over the template's own
    assert env["PITSTOP_MODEL_VERSION"] == "7"
    assert (env["PITSTOP_DATA_URI"], env["PITSTOP_DATA_SHA256"]) == ("s3://b/train.csv", "abc")
    assert json.loads(env["PITSTOP_EVIDENCE"])["breaches"][0]["metric"] == "drift"
    assert JOB["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == "x"  # untouched
