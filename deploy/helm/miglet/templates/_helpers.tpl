{{/* The chart's name, truncated to what a label value allows. */}}
{{- define "miglet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Objects' name: the release name, with the chart's name unless the release has it. */}}
{{- define "miglet.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "miglet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "miglet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "miglet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "miglet.labels" -}}
helm.sh/chart: {{ include "miglet.chart" . }}
{{ include "miglet.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: miglet
{{- end }}

{{- define "miglet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "miglet.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* "true" when leader election is on: forced by leaderElection.enabled, or replicaCount > 1. */}}
{{- define "miglet.leaderElect" -}}
{{- $le := .Values.leaderElection.enabled }}
{{- if eq (toString $le) "auto" }}
{{- if gt (int .Values.replicaCount) 1 }}true{{ else }}false{{ end }}
{{- else if $le }}true{{ else }}
{{- if gt (int .Values.replicaCount) 1 }}
{{- fail "leaderElection.enabled=false with replicaCount > 1: the replicas would all act at once; use leader election or one replica" }}
{{- end }}false
{{- end }}
{{- end }}

{{/* The Secret RunnerPools name for GitHub credentials ("" when there is none). */}}
{{- define "miglet.githubSecretName" -}}
{{- if .Values.github.existingSecret }}
{{- .Values.github.existingSecret }}
{{- else if or .Values.github.token .Values.github.app.id }}
{{- printf "%s-github" (include "miglet.fullname" .) }}
{{- end }}
{{- end }}

{{/* app or token: what the credentials Secret holds. */}}
{{- define "miglet.githubSecretType" -}}
{{- if .Values.github.existingSecret }}{{ .Values.github.existingSecretType }}
{{- else if .Values.github.token }}token
{{- else }}app
{{- end }}
{{- end }}

{{/* The endpoint agents in runner pods dial: flags.agent-endpoint, else this Service. */}}
{{- define "miglet.agentEndpoint" -}}
{{- $e := index .Values.flags "agent-endpoint" }}
{{- if $e }}{{ $e }}
{{- else }}{{ printf "%s.%s.svc:%d" (include "miglet.fullname" .) .Release.Namespace (int .Values.ports.grpc) }}
{{- end }}
{{- end }}
