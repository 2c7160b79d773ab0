{{/* Full name of the release's objects. */}}
{{- define "pitstop.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object; the selector labels are the stable subset. */}}
{{- define "pitstop.selectorLabels" -}}
app.kubernetes.io/name: pitstop
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "pitstop.labels" -}}
{{ include "pitstop.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: pitstop
{{- end -}}

{{- define "pitstop.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "pitstop.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The rules the operator needs wherever it handles ModelDeployments: the ClusterRole's
in cluster-wide mode, each watched namespace's Role otherwise.
*/}}
{{- define "pitstop.watchedRules" -}}
# ModelDeployments: watched by Kopf, read by the reconciler; only status is written.
- apiGroups: ["pitstop.dev"]
  resources: ["modeldeployments"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["pitstop.dev"]
  resources: ["modeldeployments/status"]
  verbs: ["patch"]
# Children carry owner references with blockOwnerDeletion, which clusters enforcing
# OwnerReferencesPermissionEnforcement allow only with update on the owner's finalizers.
- apiGroups: ["pitstop.dev"]
  resources: ["modeldeployments/finalizers"]
  verbs: ["update"]
# Revisions: applied (an apply that creates is also a create), listed, watched by Kopf,
# scaled through the scale subresource, deleted beyond the revision history.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["create", "delete", "list", "patch", "watch"]
- apiGroups: ["apps"]
  resources: ["deployments/scale"]
  verbs: ["get", "patch", "update"]
# Services and the mirror ConfigMap: applied, read, watched by Kopf (an apply that
# would change nothing is skipped; one someone else changed or deleted is re-applied).
- apiGroups: [""]
  resources: ["services"]
  verbs: ["create", "delete", "get", "list", "patch", "watch"]
# The mirror file of the service traffic provider and build records.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["create", "get", "list", "patch", "watch"]
# A ModelDeployment's API keys (serving.auth), for smoke tests and generated load.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
# Traffic providers: gateway-api weights (or creates) HTTPRoutes, istio VirtualServices;
# a route Pitstop creates is owned, so garbage collection deletes it.
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: ["create", "get", "patch"]
# A route's Gateway, to find its GatewayClass: a shadow mirrors only through an
# implementation that says it supports RequestMirror.
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["gateways"]
  verbs: ["get"]
- apiGroups: ["networking.istio.io"]
  resources: ["virtualservices"]
  verbs: ["create", "get", "patch"]
# Events on ModelDeployments; a repeated one is counted on the first (patch).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
# A revision's pods, whose /metrics the builtin metrics read.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
# Kopf watches build Jobs (pitstop.handlers); they run in the build namespace. Here a
# Job is only created by monitoring, once per retraining episode
# (spec.monitoring.retrain.job), owned by its ModelDeployment.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["create", "list", "watch"]
{{- end -}}

{{/*
The rules the operator needs in the build namespace (build.namespace), in both modes:
nothing else is granted there, and no build permission is granted anywhere else.
*/}}
{{- define "pitstop.buildRules" -}}
# One Job per attempt: created (suspended when it needs Secret copies), resumed once
# they exist, annotated when its failure was reported.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["create", "list", "patch"]
# Its pods' status and logs explain a failure.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
# Build records: a finished build's image, so no package is built twice.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["create", "get", "patch"]
# Copies of the push and model-source Secrets of the ModelDeployment that starts an
# attempt, owned by its Job (garbage collection deletes them with it).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["create"]
# A `pvc` model source: build pods mount the claim from here; checked before a build.
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["get"]
{{- end -}}

{{/*
The least Pod Security level that admits the enabled builders: rootless BuildKit needs
seccomp and AppArmor Unconfined (only `privileged` allows them), kaniko runs as root
(`baseline` allows it, `restricted` does not).
*/}}
{{- define "pitstop.buildPodSecurity" -}}
{{- if has "buildkit" .Values.build.builders -}}privileged{{- else -}}baseline{{- end -}}
{{- end -}}

{{/*
The build settings the operator reads from its environment (pitstop.images.settings)
that tell it where builds run and which builders are enabled. For the operator
container's env in deployment.yaml: {{ include "pitstop.buildEnv" . | nindent 12 }}
*/}}
{{- define "pitstop.buildEnv" -}}
- name: PITSTOP_BUILD_NAMESPACE
  value: {{ .Values.build.namespace | quote }}
- name: PITSTOP_BUILD_BUILDERS
  value: {{ join "," .Values.build.builders | quote }}
{{- end -}}
