"""The desired state of a ModelDeployment: what the user commits to Git.

Field descriptions become `kubectl explain` text; `with_validations` rules become CEL
`x-kubernetes-validations`, so the API server refuses cross-field mistakes with a
message naming the field before the operator ever sees them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field
from pydantic.config import JsonDict

from pitstop.api.base import DnsLabel, Duration, SpecModel, spec_config, with_validations

# A container image reference: [registry[:port]/]path[:tag][@sha256:digest], no spaces.
IMAGE_PATTERN = (
    r"^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?(:[0-9]+)?"
    r"(/[a-z0-9]+([._-]+[a-z0-9]+)*)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(@sha256:[a-f0-9]{64})?$"
)
Image = Annotated[str, Field(pattern=IMAGE_PATTERN, max_length=512)]

# Versions end up in label values, so they follow the label-value grammar.
VERSION_PATTERN = r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"

Quantity = Annotated[
    int | str,
    Field(
        json_schema_extra={
            "x-kubernetes-int-or-string": True,
            "pattern": r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$",
        }
    ),
]


class PvcSource(SpecModel):
    """A model package on a PersistentVolumeClaim in the same namespace."""

    claim_name: DnsLabel = Field(description="Name of the PersistentVolumeClaim.")
    path: str = Field(
        default="",
        max_length=1024,
        pattern=r"^[^\s]*$",
        description="Path of the package inside the volume.",
    )


class ModelSource(SpecModel):
    """Where the trained model package lives. Exactly one of uri or pvc."""

    model_config = spec_config(
        (
            "[has(self.uri), has(self.pvc)].filter(x, x).size() == 1",
            "exactly one of spec.model.source.uri or spec.model.source.pvc must be set",
        ),
    )

    uri: str | None = Field(
        default=None,
        pattern=r"^(s3|https?)://[^\s]+$",
        max_length=2048,
        description="s3://bucket/path or https:// URL of the model package.",
    )
    pvc: PvcSource | None = Field(default=None, description="Package on a volume claim.")
    credentials_secret: DnsLabel | None = Field(
        default=None, description="Secret with credentials to read the source (S3 keys, token)."
    )


class ModelRef(SpecModel):
    """The trained model this deployment serves."""

    name: DnsLabel = Field(description="Model name, e.g. fraud.")
    version: str = Field(
        pattern=VERSION_PATTERN,
        max_length=63,
        description='Model version, e.g. "7". Shown in status and on every child object.',
    )
    source: ModelSource | None = Field(
        default=None,
        description="Where the package is fetched from for the image build. "
        "Not needed when spec.image is set.",
    )


class BuildCache(SpecModel):
    """Build layers kept in a registry repository and reused by later builds."""

    repository: str = Field(
        pattern=r"^[^\s]+$",
        max_length=512,
        description="Repository holding the cache, e.g. registry.example.com/ml/build-cache.",
    )
    mode: Literal["min", "max"] = Field(
        default="max",
        description="BuildKit: min caches the final image's layers, max every stage's too "
        "(kaniko always caches each layer).",
    )
    export: bool = Field(
        default=True, description="Also write the cache (cache-to); false only reads it."
    )


class BuildSpec(SpecModel):
    """How Pitstop builds the serving image when spec.image is empty."""

    registry: str = Field(
        pattern=r"^[^\s]+$",
        max_length=512,
        description="Registry and repository prefix to push to, e.g. registry.example.com/ml.",
    )
    push_secret: DnsLabel | None = Field(
        default=None, description="docker-registry Secret used to push (and pull) the image."
    )
    builder: Literal["buildkit", "kaniko"] = Field(
        default="buildkit", description="Rootless builder that runs the build Job."
    )
    cache: BuildCache | None = Field(
        default=None,
        description="Registry layer cache (cache-from / cache-to). Absent: the operator's "
        "default cache (chart value build.cache), or none.",
    )
    timeout: Duration = Field(
        default="30m",
        description="Longest one build attempt may run (the build Job's activeDeadlineSeconds).",
    )


class ResourceRequirements(SpecModel):
    """Compute resources of each model server container."""

    requests: dict[str, Quantity] | None = Field(default=None, description="Minimum resources.")
    limits: dict[str, Quantity] | None = Field(default=None, description="Maximum resources.")


class AuthSpec(SpecModel):
    """API-key authentication of the model's REST API."""

    api_keys_secret: DnsLabel = Field(
        description="Secret whose every data entry is one accepted API key. "
        "Keys are re-read on change, so rotation needs no restart."
    )


class RateLimitSpec(SpecModel):
    """Per-API-key token bucket."""

    requests_per_second: float = Field(gt=0, le=1_000_000, description="Sustained rate per key.")
    burst: int = Field(ge=1, le=1_000_000, description="Bucket size: requests allowed at once.")


class BatchingSpec(SpecModel):
    """Adaptive micro-batching: concurrent requests share one model call."""

    model_config = spec_config(
        (
            "duration(self.maxWait) > duration('0s') && duration(self.maxWait) <= duration('1s')",
            "maxWait must be more than 0s and at most 1s",
        ),
    )

    max_wait: Duration = Field(
        default="5ms",
        description="The longest a request waits for others to share its model call (a "
        "busy server does not wait: requests gather while the model works).",
    )
    max_rows: int = Field(
        default=64, ge=1, le=10_000, description="The most rows one model call predicts."
    )


class FeedbackSpec(SpecModel):
    """Ground truth for earlier predictions (`POST /feedback` on the model servers).

    Each pod keeps the predictions of its last `retain` requests by request id; feedback
    posted to any pod of any revision reaches the pod that made the prediction (the pods
    find each other through a headless Service, `<name>-peers`). The `quality` metric
    judges what comes back."""

    retain: int = Field(
        default=100_000,
        ge=1,
        le=10_000_000,
        description="Predictions each model server pod keeps for feedback, by request id "
        "(about 100 bytes each; the oldest are forgotten first).",
    )


class ServingSpec(SpecModel):
    """How each revision's model servers run."""

    model_config = spec_config(
        ("duration(self.drain) <= duration('10m')", "drain must be at most 10m"),
    )

    replicas: int = Field(default=1, ge=0, le=1000, description="Model server pods per revision.")
    resources: ResourceRequirements | None = Field(default=None, description="Per-pod resources.")
    auth: AuthSpec | None = Field(default=None, description="Off when absent.")
    rate_limit: RateLimitSpec | None = Field(default=None, description="Off when absent.")
    max_batch_size: int = Field(
        default=100, ge=1, le=10_000, description="Largest number of rows in one request."
    )
    batching: BatchingSpec | None = Field(
        default=None,
        description="Off when absent: each request is one model call. Worth it for models "
        "whose prediction dominates a request (forests, ensembles); a package created with "
        "--no-batching is still called per request.",
    )
    feedback: FeedbackSpec | None = Field(
        default=None,
        description="Ground-truth feedback routed to the pod that predicted (on by itself "
        "when an analysis metric is builtin quality).",
    )
    drain: Duration = Field(
        default="5s",
        description="How long a model pod that is going away keeps answering before it is "
        "stopped, while kube-proxy and load balancers stop routing to it (a preStop sleep; "
        "the pod's grace period is this plus 30s). Raise it behind a load balancer that "
        "deregisters slowly (an AWS ALB: its deregistration delay); 0s stops pods at once.",
    )


class CanaryStep(SpecModel):
    """One canary step: send `weight` percent to the candidate until the analysis says."""

    model_config = spec_config(
        (
            "!has(self.minPause) || has(self.pause)",
            "minPause needs pause (a step without pause waits for a manual promote)",
        ),
        (
            "!has(self.minPause) || !has(self.pause)"
            " || duration(self.minPause) <= duration(self.pause)",
            "minPause must not be longer than pause",
        ),
    )

    weight: int = Field(ge=0, le=100, description="Percent of traffic for the candidate.")
    pause: Duration | None = Field(
        default=None,
        description="The longest this step waits for the analysis to pass: it advances as "
        "soon as every metric passes (after minPause), rolls back as soon as one fails, and "
        "when pause runs out with metrics still inconclusive does what "
        "analysis.onInconclusive says. Without analysis metrics the step lasts exactly "
        "this long. Absent: wait for a manual promote.",
    )
    min_pause: Duration | None = Field(
        default=None,
        description="The least time at this step, even when every metric already passes "
        "(default 0s: evidence from earlier steps counts).",
    )


class CanarySpec(SpecModel):
    """Weighted steps towards the candidate; after the last step it becomes stable."""

    steps: list[CanaryStep] = Field(
        min_length=1,
        max_length=20,
        description="Steps in order; weights strictly ascending.",
        json_schema_extra=with_validations(
            (
                "self.all(s, self.filter(t, t.weight == s.weight).size() == 1)"
                " && self.map(s, s.weight).isSorted()",
                "spec.strategy.canary.steps weights must be strictly ascending",
            ),
        ),
    )


class BlueGreenSpec(SpecModel):
    """Full-size candidate behind a preview Service, then an all-at-once switch."""

    auto_promote: bool = Field(
        default=True, description="Switch when checks pass; false waits for `pitstop promote`."
    )
    scale_down_delay: Duration = Field(
        default="30s", description="How long the old stable stays up after the switch."
    )


class ShadowSpec(SpecModel):
    """Mirror traffic to the candidate, compare its answers, never let it answer users."""

    model_config = spec_config(
        (
            "!has(self.minDuration) || !has(self.duration)"
            " || duration(self.minDuration) <= duration(self.duration)",
            "spec.strategy.shadow.minDuration must not be longer than duration",
        ),
    )

    percent: int = Field(default=100, ge=1, le=100, description="Share of requests mirrored.")
    duration: Duration = Field(
        default="10m",
        description="The longest the candidate is mirrored waiting for the analysis to pass; "
        "then an inconclusive analysis does what analysis.onInconclusive says. Without "
        "analysis metrics the shadow phase lasts exactly this long.",
    )
    min_duration: Duration = Field(
        default="0s",
        description="The least time the candidate is mirrored, even when every "
        "metric already passes.",
    )
    min_agreement: float = Field(
        default=0.97, ge=0, le=1, description="Share of predictions that must match production."
    )
    promote: Literal["Auto", "Manual"] = Field(
        default="Auto", description="After the shadow phase: promote by itself or wait."
    )
    promote_with: Literal["BlueGreen", "Canary"] = Field(
        default="BlueGreen", description="How a promoted shadow candidate takes traffic."
    )


StrategyType = Literal["BlueGreen", "Canary", "Shadow"]


class StrategySpec(SpecModel):
    """How a new revision replaces the stable one."""

    model_config = spec_config(
        (
            "!has(self.canary) || self.type == 'Canary' || self.type == 'Shadow'",
            "spec.strategy.canary is only allowed when spec.strategy.type is Canary "
            "(or Shadow promoting with Canary)",
        ),
        (
            "!has(self.blueGreen) || self.type == 'BlueGreen' || self.type == 'Shadow'",
            "spec.strategy.blueGreen is only allowed when spec.strategy.type is BlueGreen "
            "(or Shadow promoting with BlueGreen)",
        ),
        (
            "!has(self.shadow) || self.type == 'Shadow'",
            "spec.strategy.shadow is only allowed when spec.strategy.type is Shadow",
        ),
    )

    type: StrategyType = Field(default="Canary", description="BlueGreen, Canary or Shadow.")
    canary: CanarySpec | None = Field(default=None, description="Settings of a Canary rollout.")
    blue_green: BlueGreenSpec | None = Field(
        default=None, description="Settings of a BlueGreen rollout."
    )
    shadow: ShadowSpec | None = Field(default=None, description="Settings of a Shadow rollout.")


class PrometheusQuery(SpecModel):
    """PromQL; {{name}}, {{namespace}}, {{revision}} and {{interval}} are filled in.

    Either one `query` giving a value, held against the limits each interval (failures
    counted against failureLimit), or `numerator` and `denominator` giving counts over
    {{interval}} (bad events and all events, e.g. 5xx answers and all answers), judged
    like the builtin metrics: sequentially, candidate against stable, at the analysis'
    confidence.
    """

    model_config = spec_config(
        (
            "has(self.query) != (has(self.numerator) && has(self.denominator))"
            " && has(self.numerator) == has(self.denominator)",
            "set either query, or numerator and denominator",
        ),
    )

    query: str | None = Field(
        default=None, min_length=1, max_length=4096, description="PromQL returning one value."
    )
    numerator: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="PromQL returning the count of bad events over {{interval}}, e.g. "
        'sum(increase(http_requests_total{code=~"5.."}[{{interval}}])).',
    )
    denominator: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="PromQL returning the count of all events over {{interval}}.",
    )
    address: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s]+$",
        description="Prometheus URL; defaults to the operator's configured one.",
    )


class WebhookCheck(SpecModel):
    """A POST with the rollout's context; the answer says pass or fail."""

    url: str = Field(pattern=r"^https?://[^\s]+$", max_length=2048, description="Endpoint URL.")


class MetricSpec(SpecModel):
    """One health metric and its limits."""

    model_config = spec_config(
        (
            "[has(self.builtin), has(self.prometheus), has(self.webhook)].filter(x, x).size() == 1",
            "exactly one of builtin, prometheus or webhook must be set",
        ),
        (
            "has(self.webhook) || has(self.max) || has(self.min) || has(self.maxAboveStable)"
            " || has(self.maxRatioToStable)",
            "a metric needs a limit: max, min, maxAboveStable or maxRatioToStable",
        ),
        (
            "!has(self.max) || !has(self.min) || self.min <= self.max",
            "min must not be greater than max",
        ),
        (
            "!has(self.maxAboveStable) || !has(self.maxRatioToStable)",
            "set one of maxAboveStable or maxRatioToStable (use two metrics for both)",
        ),
        (
            "!has(self.builtin) || self.builtin != 'drift'"
            " || (!has(self.min) && !has(self.maxAboveStable) && !has(self.maxRatioToStable))",
            "builtin drift takes max only: it is judged against the candidate's own "
            "training profile",
        ),
        (
            "!has(self.builtin) || self.builtin != 'agreement'"
            " || (!has(self.max) && !has(self.maxAboveStable) && !has(self.maxRatioToStable))",
            "builtin agreement takes min only",
        ),
        (
            "!has(self.builtin) || self.builtin != 'quality' || !has(self.min)",
            "builtin quality is an error (1 - accuracy, or mean absolute error): limit it "
            "with max, maxAboveStable or maxRatioToStable, not min",
        ),
    )

    name: DnsLabel = Field(description="Unique name of the metric in this analysis.")
    builtin: Literal["errorRate", "latencyP99", "drift", "agreement", "quality"] | None = Field(
        default=None,
        description="A metric Pitstop measures from the model servers itself. quality is "
        "the model's error on predictions whose true outcome came back (POST /feedback): "
        "the share of wrong classes for a classifier (1 - accuracy), the mean absolute "
        "error for a regressor; like errorRate, lower is better.",
    )
    prometheus: PrometheusQuery | None = Field(default=None, description="A PromQL query.")
    webhook: WebhookCheck | None = Field(default=None, description="An external check.")
    max: float | None = Field(
        default=None, description="Fails when confident the value is above this."
    )
    min: float | None = Field(
        default=None, description="Fails when confident the value is below this."
    )
    max_above_stable: float | None = Field(
        default=None,
        ge=0,
        description="Fails when confident the candidate's value exceeds the stable's, "
        "measured over the same intervals, by more than this (e.g. 0.005 = half a point "
        "of error rate; seconds for latency).",
    )
    max_ratio_to_stable: float | None = Field(
        default=None,
        gt=0,
        description="Fails when confident the candidate's value is more than this multiple "
        "of the stable's, measured over the same intervals (e.g. 1.5 for p99 latency).",
    )


class SmokeTestSpec(SpecModel):
    """Requests sent to the candidate before any user reaches it."""

    requests: list[dict[str, Any]] | None = Field(
        default=None,
        max_length=100,
        description="Request rows (feature name to value) to send to /predict. "
        "Absent: rows generated from the package's data profile.",
        json_schema_extra={
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        },
    )
    generated: int = Field(
        default=20, ge=0, le=1000, description="Rows generated when `requests` is absent."
    )
    timeout: Duration = Field(default="10s", description="Longest wait for each answer.")


class LoadSpec(SpecModel):
    """Requests Pitstop generates from the training data profile while analysis runs."""

    requests_per_second: float = Field(
        gt=0, le=1000, description="Rate sent to each of candidate and stable."
    )


class LoadTestSpec(SpecModel):
    """A load test of the candidate before any user reaches it: requests drawn from the
    training profile at a target rate and concurrency for a duration, against its pods.
    The rollout is stopped when the p99 latency or the error rate breaks its limit."""

    requests_per_second: float = Field(
        default=20, gt=0, le=5000, description="Rate sent to the candidate's pods, in all."
    )
    concurrency: int = Field(
        default=8, ge=1, le=256, description="Requests in flight at most at once."
    )
    duration: Duration = Field(default="30s", description="How long the load lasts.")
    max_p99: Duration | None = Field(
        default=None, description="Fails when the answers' p99 latency (client side) is above."
    )
    max_error_rate: float = Field(
        default=0.01, ge=0, le=1, description="Fails when more answers than this are errors."
    )


class StressTestSpec(SpecModel):
    """Before any user reaches it, one candidate pod is driven at a rising rate until its
    p99 breaks `maxP99`, errors appear or it cannot keep up: the last rate it sustained
    is its capacity per pod (status.analysis.stress). With `requireCapacity`, a candidate
    whose capacity times its replicas cannot carry the stable's current traffic (with
    `headroom`) is stopped there."""

    max_p99: Duration = Field(description="The p99 latency a sustained rate keeps under.")
    max_error_rate: float = Field(
        default=0.01, ge=0, le=1, description="The error rate a sustained rate keeps under."
    )
    start_rate: float = Field(default=5, gt=0, le=10_000, description="First rate, per second.")
    factor: float = Field(default=1.5, gt=1, le=4, description="Each step's rate over the last.")
    step: Duration = Field(default="10s", description="How long each rate is held.")
    max_rate: float = Field(
        default=2000, gt=0, le=100_000, description="The ramp stops here (capacity at least)."
    )
    require_capacity: bool = Field(
        default=True,
        description="Stop a candidate that cannot carry the stable's current traffic.",
    )
    headroom: float = Field(
        default=1.2, ge=1, le=10, description="Capacity needed over the stable's current rate."
    )


class AnalysisSpec(SpecModel):
    """How the candidate's health is judged during and after a rollout.

    Builtin metrics and PromQL counts are judged sequentially: evidence accumulates,
    candidate against stable over the same intervals, and a metric Fails only when the
    analysis is confident (see `confidence`) that a limit is broken, Passes when
    confident it holds, and stays Inconclusive in between.
    """

    model_config = spec_config(
        ("self.confidence > 0.5 && self.confidence < 1.0", "confidence must be in (0.5, 1)"),
    )

    interval: Duration = Field(
        default="15s",
        description="How often value metrics (a PromQL query, a webhook) are measured, and "
        "the {{interval}} of PromQL. Builtin metrics are read about every second.",
    )
    failure_limit: int = Field(
        default=1,
        ge=0,
        le=100,
        description="Failed measurements of value metrics (PromQL query, webhook) tolerated "
        "before rollback.",
    )
    min_requests: int = Field(
        default=50,
        ge=0,
        description="No metric passes on fewer candidate requests than this (rows for "
        "drift, compared predictions for agreement). A failure needs no minimum: the "
        "confidence already accounts for small samples.",
    )
    confidence: float = Field(
        default=0.99,
        description="Probability that a candidate within every limit is not rolled back, "
        "over the whole rollout and all sequentially judged metrics together; it also "
        "bounds the chance that a candidate breaking a limit passes it.",
    )
    on_inconclusive: Literal["Hold", "Rollback", "Promote"] = Field(
        default="Hold",
        description="When a step's pause (or the shadow's duration) runs out with a metric "
        "still inconclusive: Hold (stay at the step and keep gathering evidence, with a "
        "condition saying which metric needs how many more requests), Rollback, or "
        "Promote (continue as if it passed).",
    )
    load: LoadSpec | None = Field(
        default=None,
        description="Generated requests for models with too little traffic for a verdict "
        "(off when absent).",
    )
    post_promotion_window: Duration = Field(
        default="0s",
        description="After promotion, analysis goes on this long while the previous stable "
        "stays up; a failure then rolls back to it.",
    )
    smoke_test: SmokeTestSpec | None = Field(
        default=None, description="Checks the candidate before it gets any traffic."
    )
    load_test: LoadTestSpec | None = Field(
        default=None,
        description="Loads the candidate before it gets any traffic (after the smoke test).",
    )
    stress_test: StressTestSpec | None = Field(
        default=None,
        description="Finds the candidate's capacity per pod before it gets any traffic.",
    )
    metrics: list[MetricSpec] = Field(
        default_factory=list,
        max_length=20,
        description="Metrics and limits.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )


# A DNS-1123 subdomain, as Gateway API and Istio name hosts ("*." wildcard allowed).
HOSTNAME_PATTERN = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
Hostname = Annotated[str, Field(pattern=HOSTNAME_PATTERN, min_length=1, max_length=253)]
# An Istio gateway reference: "mesh", "name" or "namespace/name".
GatewayName = Annotated[
    str,
    Field(
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253
    ),
]


class ParentRef(SpecModel):
    """A Gateway (or other parent) that an HTTPRoute created by Pitstop attaches to."""

    name: DnsLabel = Field(description="Name of the parent, e.g. the Gateway's name.")
    namespace: DnsLabel | None = Field(
        default=None, description="Namespace of the parent; the route's own when absent."
    )
    section_name: DnsLabel | None = Field(
        default=None, description="A listener of the Gateway; all listeners when absent."
    )
    group: str | None = Field(
        default=None,
        max_length=253,
        pattern=r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        description="API group of the parent; gateway.networking.k8s.io when absent.",
    )
    kind: str | None = Field(
        default=None,
        max_length=63,
        pattern=r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$",
        description="Kind of the parent; Gateway when absent.",
    )


class HttpRouteRef(SpecModel):
    """The Gateway API HTTPRoute (same namespace) whose backends Pitstop weights.

    Without parentRefs the route is the user's: Pitstop rewrites only the backendRefs
    and its RequestMirror filter of the rules that route to this ModelDeployment's
    Services. With parentRefs Pitstop creates and owns the whole route.
    """

    model_config = spec_config(
        (
            "!has(self.hostnames) || has(self.parentRefs)",
            "spec.traffic.httpRoute.hostnames is only allowed with parentRefs "
            "(a route Pitstop creates)",
        ),
    )

    name: DnsLabel = Field(description="Name of the HTTPRoute.")
    parent_refs: list[ParentRef] | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        description="When set, Pitstop creates and owns the HTTPRoute, attached to these "
        "parents. When absent, the HTTPRoute must already exist.",
    )
    hostnames: list[Hostname] | None = Field(
        default=None,
        min_length=1,
        max_length=16,
        description="Hostnames of a route Pitstop creates; all of the parents' when absent.",
    )


class VirtualServiceRef(SpecModel):
    """The Istio VirtualService (same namespace) whose routes Pitstop weights.

    Without hosts the VirtualService is the user's: Pitstop rewrites only the route and
    mirror of the http rules that route to this ModelDeployment's Services. With hosts
    Pitstop creates and owns the whole VirtualService.
    """

    model_config = spec_config(
        (
            "!has(self.gateways) || has(self.hosts)",
            "spec.traffic.virtualService.gateways is only allowed with hosts "
            "(a VirtualService Pitstop creates)",
        ),
    )

    name: DnsLabel = Field(description="Name of the VirtualService.")
    hosts: list[Hostname] | None = Field(
        default=None,
        min_length=1,
        max_length=16,
        description="When set, Pitstop creates and owns the VirtualService for these hosts. "
        "When absent, the VirtualService must already exist.",
    )
    gateways: list[GatewayName] | None = Field(
        default=None,
        min_length=1,
        max_length=16,
        description="Gateways of a VirtualService Pitstop creates (namespace/name, or mesh); "
        "sidecars only when absent.",
    )


class TrafficSpec(SpecModel):
    """How traffic is split and mirrored between revisions."""

    model_config = spec_config(
        (
            "!has(self.httpRoute) || self.provider == 'gateway-api'",
            "spec.traffic.httpRoute is only allowed with provider gateway-api",
        ),
        (
            "!has(self.virtualService) || self.provider == 'istio'",
            "spec.traffic.virtualService is only allowed with provider istio",
        ),
        (
            "self.provider != 'gateway-api' || has(self.httpRoute)",
            "spec.traffic.httpRoute is required with provider gateway-api",
        ),
        (
            "self.provider != 'istio' || has(self.virtualService)",
            "spec.traffic.virtualService is required with provider istio",
        ),
    )

    provider: Literal["service", "gateway-api", "istio"] = Field(
        default="service", description="service (no mesh), gateway-api or istio."
    )
    http_route: HttpRouteRef | None = Field(default=None, description="The HTTPRoute to manage.")
    virtual_service: VirtualServiceRef | None = Field(
        default=None, description="The Istio VirtualService to manage."
    )


NotifyOn = Literal["RolloutStarted", "StepAdvanced", "Held", "Promoted", "RolledBack", "Aborted"]
NOTIFY_ON: tuple[NotifyOn, ...] = (
    "RolloutStarted", "StepAdvanced", "Held", "Promoted", "RolledBack", "Aborted",
)  # fmt: skip


class SecretKey(SpecModel):
    """One entry of a Secret in the ModelDeployment's namespace."""

    name: DnsLabel = Field(description="The Secret's name.")
    key: str = Field(
        min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$", description="Its data key."
    )


class NotifyTarget(SpecModel):
    """A webhook told of this ModelDeployment's rollout transitions."""

    model_config = spec_config(
        (
            "has(self.url) != has(self.urlSecret)",
            "set exactly one of url or urlSecret",
        ),
    )

    url: str | None = Field(
        default=None, max_length=2048, pattern=r"^https?://[^\s]+$",
        description="Where to POST. Slack and similar URLs are credentials: use urlSecret.",
    )  # fmt: skip
    url_secret: SecretKey | None = Field(
        default=None, description="A Secret entry holding the URL (kept out of Git)."
    )
    format: Literal["JSON", "Slack"] = Field(
        default="JSON",
        description="JSON: the transition with the deciding metric's value, interval and "
        'limit. Slack: an incoming-webhook message ({"text": ...}).',
    )
    events: list[NotifyOn] = Field(
        default_factory=lambda: list(NOTIFY_ON), max_length=len(NOTIFY_ON),
        description="Which transitions to send (default: all of them).",
    )  # fmt: skip


# Lets the API server default nested fields when the user omits the whole section.
_EMPTY_DEFAULT: JsonDict = {"default": {}}


class RetrainSpec(SpecModel):
    """What starts a retraining when monitoring recommends one: once per episode."""

    model_config = spec_config(
        ("has(self.job) || has(self.webhook)", "set job, webhook or both"),
    )

    job: dict[str, Any] | None = Field(
        default=None,
        description="A batch/v1 JobTemplateSpec ({metadata, spec}) run in the "
        "ModelDeployment's namespace; every container gets PITSTOP_MODEL, "
        "PITSTOP_MODEL_VERSION, PITSTOP_DATA_URI, PITSTOP_DATA_SHA256, PITSTOP_REASON and "
        "PITSTOP_EVIDENCE (JSON).",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True, "type": "object"},
    )
    webhook: WebhookCheck | None = Field(
        default=None,
        description="POSTed the same parameters as JSON (retried with backoff).",
    )


class MonitoringSpec(SpecModel):
    """The stable revision watched between rollouts: retraining recommended when a
    metric stays beyond its limit."""

    model_config = spec_config(
        (
            "self.metrics.all(m, has(m.builtin) && (m.builtin == 'drift' || m.builtin == "
            "'quality') && has(m.max))",
            "monitoring metrics are builtin drift or quality, each with a max",
        ),
        ("self.confidence > 0.5 && self.confidence < 1.0", "confidence must be in (0.5, 1)"),
    )

    metrics: list[MetricSpec] = Field(
        min_length=1, max_length=10, description="Builtin drift or quality metrics with a max."
    )
    for_: Duration = Field(
        default="30m",
        alias="for",
        description="How long a metric must stay confidently beyond its max before "
        "retraining is recommended.",
    )
    interval: Duration = Field(
        default="1m", description="How often the stable's model servers are read."
    )
    confidence: float = Field(
        default=0.99,
        description="Each check says 'beyond' or 'within' only at this confidence; in "
        "between it changes nothing.",
    )
    retrain: RetrainSpec | None = Field(
        default=None,
        description="Started once per episode (a metric beyond its max for `for`, until "
        "it is confidently within it again). Absent: only the condition and the Event.",
    )


class ModelDeploymentSpec(SpecModel):
    """A model to serve and how to roll out each new version of it."""

    model_config = spec_config(
        (
            "has(self.image) || has(self.model.source)",
            "spec.model.source is required unless spec.image is set",
        ),
        (
            "has(self.image) || has(self.build)",
            "spec.build is required unless spec.image is set",
        ),
        (
            # Zero would roll back every candidate on its first look, before any pod ran.
            "!has(self.progressDeadline) || duration(self.progressDeadline) >= duration('1s')",
            "spec.progressDeadline must be at least 1s",
        ),
    )

    model: ModelRef = Field(description="The trained model to serve.")
    image: Image | None = Field(
        default=None, description="A prebuilt serving image; when set, no build runs."
    )
    build: BuildSpec | None = Field(default=None, description="How to build the serving image.")
    serving: ServingSpec = Field(
        default_factory=ServingSpec, json_schema_extra=_EMPTY_DEFAULT, description="Model servers."
    )
    strategy: StrategySpec = Field(
        default_factory=StrategySpec,
        json_schema_extra=_EMPTY_DEFAULT,
        description="Rollout strategy.",
    )
    approval: Literal["Automatic", "Required"] = Field(
        default="Automatic",
        description="Required: a candidate whose checks passed waits (phase Paused, reason "
        "AwaitingApproval) for `pitstop promote` before it takes all traffic: at the end of "
        "its last canary step, before a blue/green switch, at the end of a shadow that "
        "promotes by switch. A failing candidate still rolls back by itself.",
    )
    analysis: AnalysisSpec = Field(
        default_factory=AnalysisSpec,
        json_schema_extra=_EMPTY_DEFAULT,
        description="Health analysis.",
    )
    traffic: TrafficSpec = Field(
        default_factory=TrafficSpec,
        json_schema_extra=_EMPTY_DEFAULT,
        description="Traffic routing.",
    )
    progress_deadline: Duration = Field(
        default="10m",
        description="How long a candidate may lack ready pods (crash loop, unpullable "
        "image, unschedulable) before it is rolled back, counted from when it started or "
        "last lost them. A first revision has nothing to fall back to: it reports "
        "Progressing=False and keeps trying.",
    )
    revision_history_limit: int = Field(
        default=5,
        ge=0,
        le=100,
        description="Retired revisions kept (scaled to zero) before their objects are deleted.",
    )
    monitoring: MonitoringSpec | None = Field(
        default=None,
        description="Watch the stable between rollouts: condition RetrainingRecommended, "
        "an Event and spec.monitoring.retrain when drift or quality stays beyond a limit.",
    )
    notify: list[NotifyTarget] = Field(
        default_factory=list,
        max_length=5,
        description="Webhooks told of rollout transitions (started, step advanced, held, "
        "promoted, rolled back, aborted), besides the operator's own (`pitstop run "
        "--notify-url`). Delivery never delays a rollout: retried with backoff, then "
        "dropped with a log line.",
    )
