"""KWOK's configuration: which nodes it plays and how fake pods move through their lives.

This module owns the behaviour that stands in for kubelets. It renders one multi-document
YAML file (a `KwokConfiguration` plus `Stage`s) that the `kwok` process reads with
`--config`. The stages are adapted from KWOK's own `kustomize/stage/{node,pod}/fast`,
with one deliberate difference: a pod does not complete by itself. It stays Running
until a test directs its fate by annotating it `pitstop.dev/kwok-outcome: succeed` or
`fail` (optionally `pitstop.dev/kwok-exit-code: "N"`, and `pitstop.dev/kwok-message`:
the containers' termination message, which a kubelet fills with the log's tail under
`terminationMessagePolicy: FallbackToLogsOnError`), which is how build Jobs are driven
to success or failure. Pods that never become ready (a crash loop, an image that
cannot be pulled) are played by the stages of `chaos`, rendered beside these.

The YAML is kept here rather than as package data so that it ships with the code in any
install. It must not talk to the API; `cluster` creates the nodes this config manages.
"""

from __future__ import annotations

from pathlib import Path

from pitstop.devcluster import chaos

# Nodes carrying this annotation are managed by our kwok; others are left alone.
NODE_ANNOTATION = "kwok.x-k8s.io/node"
NODE_ANNOTATION_VALUE = "fake"

OUTCOME_ANNOTATION = "pitstop.dev/kwok-outcome"
EXIT_CODE_ANNOTATION = "pitstop.dev/kwok-exit-code"
MESSAGE_ANNOTATION = "pitstop.dev/kwok-message"
SUCCEED = "succeed"
FAIL = "fail"

_CONFIGURATION = """\
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  manageNodesWithAnnotationSelector: "{annotation}={annotation_value}"
  nodeIP: "127.0.0.1"
  # Only used for a node without spec.podCIDR; our nodes all carry one.
  cidr: "{fallback_cidr}"
  # kwok v0.8.0 leaves these at zero (and refuses to start) when a config file is given,
  # although its defaulting functions would set them; so they are spelled out.
  podPlayStageParallelism: 4
  nodePlayStageParallelism: 2
  nodeLeaseParallelism: 2
  nodeLeaseDurationSeconds: 40
  podsOnNodeSyncParallelism: 1
"""

_NODE_INITIALIZE = """\
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-initialize
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'NotIn'
      values: ['True']
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $lastTransitionTime := or .metadata.creationTimestamp $now }}
      conditions:
      {{ range NodeConditions }}
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $lastTransitionTime | Quote }}
        message: {{ .message | Quote }}
        reason: {{ .reason | Quote }}
        status: {{ .status | Quote }}
        type: {{ .type | Quote }}
      {{ end }}
      addresses:
      - address: {{ NodeIP | Quote }}
        type: InternalIP
      - address: {{ .metadata.name | Quote }}
        type: Hostname
      allocatable:
      {{ with .status.allocatable }}
      {{ YAML . 1 }}
      {{ else }}
        cpu: 1k
        memory: 1Ti
        pods: 1M
      {{ end }}
      capacity:
      {{ with .status.capacity }}
      {{ YAML . 1 }}
      {{ else }}
        cpu: 1k
        memory: 1Ti
        pods: 1M
      {{ end }}
      nodeInfo:
        architecture: amd64
        bootID: ""
        containerRuntimeVersion: {{ printf "kwok-%s" Version | Quote }}
        kernelVersion: {{ printf "kwok-%s" Version | Quote }}
        kubeProxyVersion: ""
        kubeletVersion: {{ printf "kwok-%s" Version | Quote }}
        machineID: ""
        operatingSystem: linux
        osImage: ""
        systemUUID: ""
      phase: Running
"""

# Node leases (kwok's default, 40 s) keep nodes healthy for the node-lifecycle
# controller; this refresh of the Ready condition is the belt to those braces.
_NODE_HEARTBEAT = """\
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-heartbeat
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:
    - key: '.status.phase'
      operator: 'In'
      values: ['Running']
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'In'
      values: ['True']
  delay:
    durationMilliseconds: 20000
    jitterDurationMilliseconds: 25000
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $lastTransitionTime := or .metadata.creationTimestamp $now }}
      conditions:
      {{ range NodeConditions }}
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $lastTransitionTime | Quote }}
        message: {{ .message | Quote }}
        reason: {{ .reason | Quote }}
        status: {{ .status | Quote }}
        type: {{ .type | Quote }}
      {{ end }}
  immediateNextStage: true
"""

# Every scheduled pod starts at once and is Ready; its IP comes from its node's podCIDR.
# With `probe_readiness`, a pod whose containers declare a readinessProbe starts NotReady
# instead: whatever runs its processes (the e2e kubelet emulator) probes them and sets
# the Ready condition, as a kubelet would, so Deployments count only pods that answer.
_POD_READY = """\
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Pending']
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'NotIn'
      values: ['True']
    - key: '@FATED@'
      operator: 'NotIn'
      values: ['true']
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $ready := "True" }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        status: {{ $ready | Quote }}
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        status: {{ $ready | Quote }}
        type: ContainersReady
      {{ range .spec.readinessGates }}
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: {{ .conditionType | Quote }}
      {{ end }}
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: {{ if eq $ready "True" }}true{{ else }}false{{ end }}
        restartCount: 0
        started: true
        state:
          running:
            startedAt: {{ $now | Quote }}
      {{ end }}
      initContainerStatuses:
      {{ range .spec.initContainers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: true
        restartCount: 0
        state:
          terminated:
            exitCode: 0
            finishedAt: {{ $now | Quote }}
            reason: Completed
            startedAt: {{ $now | Quote }}
      {{ end }}
      {{ $hostIPs := NodeIPsWith .spec.nodeName }}
      {{ with $hostIPs }}
      hostIP: {{ index . 0 | Quote }}
      hostIPs:
      {{ range . }}
      - ip: {{ . | Quote }}
      {{ end }}
      {{ end }}
      {{ $podIPs := PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
      {{ with $podIPs }}
      podIP: {{ index . 0 | Quote }}
      podIPs:
      {{ range . }}
      - ip: {{ . | Quote }}
      {{ end }}
      {{ end }}
      phase: Running
      startTime: {{ $now | Quote }}
"""

# A Running pod ends only when told to. `{phase}` and the exit code differ per outcome.
_POD_END = """\
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-{outcome}
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Running']
    - key: '.metadata.annotations["{outcome_annotation}"]'
      operator: 'In'
      values: ['{outcome}']
  next:
    statusTemplate: |
      {{{{ $now := Now }}}}
      {{{{ $annotations := or .metadata.annotations dict }}}}
      {{{{ $exitCode := or ( index $annotations "{exit_code_annotation}" ) "{default_exit_code}" }}}}
      {{{{ $message := or ( index $annotations "{message_annotation}" ) "" }}}}
      conditions:
      - lastTransitionTime: {{{{ $now | Quote }}}}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{{{ $now | Quote }}}}
        reason: PodCompleted
        status: "False"
        type: Ready
      - lastTransitionTime: {{{{ $now | Quote }}}}
        reason: PodCompleted
        status: "False"
        type: ContainersReady
      containerStatuses:
      {{{{ range .spec.containers }}}}
      - image: {{{{ .image | Quote }}}}
        name: {{{{ .name | Quote }}}}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: {{{{ $exitCode }}}}
            finishedAt: {{{{ $now | Quote }}}}
            message: {{{{ $message | Quote }}}}
            reason: {reason}
            startedAt: {{{{ $now | Quote }}}}
      {{{{ end }}}}
      phase: {phase}
"""

_POD_DELETE = """\
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-delete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'Exists'
  next:
    delete: true
"""


_PROBED_READY = """\
      {{ $ready := "True" }}
      {{ range .spec.containers }}{{ if .readinessProbe }}{{ $ready = "False" }}{{ end }}{{ end }}
"""


def render(*, fallback_cidr: str, probe_readiness: bool = False) -> str:
    """The full kwok `--config` document stream."""
    pod_ready = _POD_READY.replace("@FATED@", chaos.FATED)
    if probe_readiness:
        pod_ready = pod_ready.replace('      {{ $ready := "True" }}\n', _PROBED_READY, 1)
    docs = [
        _CONFIGURATION.format(
            annotation=NODE_ANNOTATION,
            annotation_value=NODE_ANNOTATION_VALUE,
            fallback_cidr=fallback_cidr,
        ),
        _NODE_INITIALIZE,
        _NODE_HEARTBEAT,
        pod_ready,
        *chaos.STAGES,
        _POD_END.format(
            outcome=SUCCEED,
            outcome_annotation=OUTCOME_ANNOTATION,
            exit_code_annotation=EXIT_CODE_ANNOTATION,
            message_annotation=MESSAGE_ANNOTATION,
            default_exit_code=0,
            reason="Completed",
            phase="Succeeded",
        ),
        _POD_END.format(
            outcome=FAIL,
            outcome_annotation=OUTCOME_ANNOTATION,
            exit_code_annotation=EXIT_CODE_ANNOTATION,
            message_annotation=MESSAGE_ANNOTATION,
            default_exit_code=1,
            reason="Error",
            phase="Failed",
        ),
        _POD_DELETE,
    ]
    return "---\n".join(docs)


def write(path: Path, *, fallback_cidr: str, probe_readiness: bool = False) -> Path:
    path.write_text(render(fallback_cidr=fallback_cidr, probe_readiness=probe_readiness))
    return path
