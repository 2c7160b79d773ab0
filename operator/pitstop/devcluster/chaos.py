"""Pods that never become ready: KWOK stages that play a kubelet failing to run them.

Adapted from KWOK's `kustomize/stage/pod/chaos` (whose stages are chosen by pod labels
the operator would have to render): here a test chooses a pod's fate through what the
operator does render from the spec, its image, or by annotating a pod that is running.
`stages` puts these beside its own and keeps its `pod-ready` away from such pods. Like
`stages`, this module only renders YAML.
"""

from __future__ import annotations

# Pods that never become ready, as a kubelet would leave them. A test chooses their fate
# through what the operator renders from the spec, the image:
# - from the registry `unpullable.invalid` (`.invalid` never resolves, RFC 2606): the
#   pull fails, the container waits in `ImagePullBackOff`, the pod stays Pending;
# - tagged `...-crashloop`: the server exits at once, the container waits in
#   `CrashLoopBackOff`, the pod is Running and not Ready;
# or, for a pod that was Ready, by annotating it `pitstop.dev/kwok-fate: crash-loop`: it
# crashes the same way (delete it to have its ReplicaSet start a healthy one).
UNPULLABLE_REGISTRY = "unpullable.invalid"
CRASH_LOOP_TAG_SUFFIX = "-crashloop"
FATE_ANNOTATION = "pitstop.dev/kwok-fate"
CRASH_LOOP = "crash-loop"

# jq over an image reference: its registry is UNPULLABLE_REGISTRY ("fraud:7" has none),
# or its tag ends in CRASH_LOOP_TAG_SUFFIX.
_UNPULLABLE = '(split("/") | length > 1 and (.[0] | split(":")[0] == "{registry}"))'
_CRASHING = '(split("/")[-1] | split(":") | length > 1 and (.[-1] | endswith("{suffix}")))'

# The image cannot be pulled: the pod stays Pending, its container waiting.
_POD_IMAGE_PULL_FAILED = """\
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-image-pull-failed
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
    - key: '[ .spec.containers.[].image | @UNPULLABLE@ ] | any'
      operator: 'In'
      values: ['true']
    - key: '.status.containerStatuses.[].state.waiting.reason'
      operator: 'NotIn'
      values: ['ImagePullBackOff']
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        reason: ContainersNotReady
        message: "containers with unready status: [model]"
        status: "False"
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        reason: ContainersNotReady
        status: "False"
        type: ContainersReady
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          waiting:
            reason: ImagePullBackOff
            message: {{ printf "Back-off pulling image %q" .image | Quote }}
      {{ end }}
      {{ $hostIPs := NodeIPsWith .spec.nodeName }}
      {{ with $hostIPs }}
      hostIP: {{ index . 0 | Quote }}
      {{ end }}
      phase: Pending
      startTime: {{ $now | Quote }}
"""

# The server exits at once and the kubelet backs off restarting it: Running, not Ready.
# A pod that ran already keeps its IP (a second one would be refused).
_POD_CRASH_LOOP = """\
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-crash-loop
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: >-
        (.status.phase == "Pending" and ([ .spec.containers.[].image | @CRASHING@ ] | any))
        or (.status.phase == "Running" and .metadata.annotations["@FATE@"] == "@CRASH_LOOP@")
      operator: 'In'
      values: ['true']
    - key: '.status.containerStatuses.[].state.waiting.reason'
      operator: 'NotIn'
      values: ['CrashLoopBackOff']
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $pod := .metadata.name }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        reason: ContainersNotReady
        message: "containers with unready status: [model]"
        status: "False"
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        reason: ContainersNotReady
        status: "False"
        type: ContainersReady
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 1
        started: false
        lastState:
          terminated:
            exitCode: 1
            reason: Error
            startedAt: {{ $now | Quote }}
            finishedAt: {{ $now | Quote }}
        state:
          waiting:
            reason: CrashLoopBackOff
            message: {{ printf "back-off 10s restarting failed container=%s pod=%s" .name $pod | Quote }}
      {{ end }}
      {{ $hostIPs := NodeIPsWith .spec.nodeName }}
      {{ with $hostIPs }}
      hostIP: {{ index . 0 | Quote }}
      hostIPs:
      {{ range . }}
      - ip: {{ . | Quote }}
      {{ end }}
      {{ end }}
      {{ if not .status.podIP }}
      {{ $podIPs := PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
      {{ with $podIPs }}
      podIP: {{ index . 0 | Quote }}
      podIPs:
      {{ range . }}
      - ip: {{ . | Quote }}
      {{ end }}
      {{ end }}
      {{ end }}
      phase: Running
      startTime: {{ $now | Quote }}
"""


def _fates(stage: str) -> str:
    """Fill in the jq that tells a pod's fate by its image (or annotation)."""
    return (
        stage.replace("@UNPULLABLE@", _UNPULLABLE.format(registry=UNPULLABLE_REGISTRY))
        .replace("@CRASHING@", _CRASHING.format(suffix=CRASH_LOOP_TAG_SUFFIX))
        .replace("@FATE@", FATE_ANNOTATION)
        .replace("@CRASH_LOOP@", CRASH_LOOP)
    )


# The stages, and the jq (true or false) that `pod-ready` must leave to them.
STAGES = (_fates(_POD_IMAGE_PULL_FAILED), _fates(_POD_CRASH_LOOP))
FATED = _fates("[ .spec.containers.[].image | @UNPULLABLE@ or @CRASHING@ ] | any")
