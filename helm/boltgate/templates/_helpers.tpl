{{/* Names and labels shared by every object of the chart. */}}

{{- define "boltgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release-qualified name; component names add a suffix, so keep room for it. */}}
{{- define "boltgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "boltgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "boltgate.labels" -}}
helm.sh/chart: {{ include "boltgate.chart" . }}
app.kubernetes.io/name: {{ include "boltgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: boltgate
{{- end }}

{{/* Selector labels of one component: call with (dict "root" $ "component" "gateway"). */}}
{{- define "boltgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "boltgate.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "boltgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "boltgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "boltgate.gatewayImage" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "boltgate.workerImage" -}}
{{- printf "%s:%s" .Values.worker.image.repository (default .Chart.AppVersion .Values.worker.image.tag) }}
{{- end }}

{{/* The URL the gateway's local route uses to reach the GPU worker pool (one region). */}}
{{- define "boltgate.workerUrl" -}}
{{- printf "http://%s-worker:%d" (include "boltgate.fullname" .) (int .Values.worker.service.port) }}
{{- end }}

{{- define "boltgate.redisUrl" -}}
{{- printf "redis://%s-redis:%d/0" (include "boltgate.fullname" .) (int .Values.redis.port) }}
{{- end }}

{{/* BOLTGATE_REDIS_URL: the bundled Redis, an external URL, or an external URL kept in a Secret. */}}
{{- define "boltgate.redisUrlEnv" -}}
- name: BOLTGATE_REDIS_URL
{{- if .Values.redis.enabled }}
  value: {{ include "boltgate.redisUrl" . | quote }}
{{- else if .Values.redis.external.existingSecret }}
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.external.existingSecret }}
      key: {{ .Values.redis.external.existingSecretKey }}
{{- else }}
  value: {{ required "redis.external.url is required when redis.enabled is false and state.backend is redis" .Values.redis.external.url | quote }}
{{- end }}
{{- end }}
