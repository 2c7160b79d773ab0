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
