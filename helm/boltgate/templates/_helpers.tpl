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

{{/* repository:tag, or repository@digest when a digest pins it; the tag defaults to appVersion. */}}
{{- define "boltgate.image" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) }}
{{- end }}
{{- end }}

{{- define "boltgate.gatewayImage" -}}
{{- include "boltgate.image" (dict "root" . "image" .Values.image) }}
{{- end }}

{{- define "boltgate.workerImage" -}}
{{- include "boltgate.image" (dict "root" . "image" .Values.worker.image) }}
{{- end }}

{{/* The bundled Redis runs only when the gateway keeps its state in Redis. */}}
{{- define "boltgate.bundledRedis" -}}
{{- if and .Values.redis.enabled (eq .Values.state.backend "redis") }}true{{ end }}
{{- end }}

{{/* The claim holding the SQLite state file (state.backend=sqlite). */}}
{{- define "boltgate.stateClaim" -}}
{{- default (printf "%s-state" (include "boltgate.fullname" .)) .Values.state.sqlite.persistence.existingClaim }}
{{- end }}

{{- define "boltgate.redisSecretName" -}}
{{- default (printf "%s-redis" (include "boltgate.fullname" .)) .Values.redis.auth.existingSecret }}
{{- end }}

{{/* Seconds a gateway pod may take to stop: drain, then the longest request, then a margin. */}}
{{- define "boltgate.gatewayGraceSeconds" -}}
{{- $s := .Values.gateway.shutdown }}
{{- add (int $s.preStopSeconds) (int (ceil .Values.gateway.deadlineSeconds)) (int $s.appStopSeconds) (int $s.marginSeconds) }}
{{- end }}

{{/* Worker processes per gateway pod: gateway.workers when set; else one per CPU of the CPU
limit (its request when no limit is set), rounded up, at least 1. Always 1 on the memory
backend, which several processes cannot share. */}}
{{- define "boltgate.gatewayWorkers" -}}
{{- $g := .Values.gateway }}
{{- $memory := eq .Values.state.backend "memory" }}
{{- if and $memory $g.workers (ne (toString $g.workers) "1") }}
{{- fail "gateway.workers above 1 needs state the processes share: state.backend=sqlite or redis" }}
{{- end }}
{{- if $memory }}1
{{- else if $g.workers }}{{ $g.workers }}
{{- else }}
{{- $resources := $g.resources | default dict }}
{{- $cpu := dig "limits" "cpu" (dig "requests" "cpu" "1" $resources) $resources | toString }}
{{- if hasSuffix "m" $cpu }}
{{- max 1 (div (add (trimSuffix "m" $cpu | atoi) 999) 1000) }}
{{- else }}
{{- max 1 (int (ceil (float64 $cpu))) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The URL the gateway's local route uses to reach the GPU worker pool (one region). */}}
{{- define "boltgate.workerUrl" -}}
{{- printf "http://%s-worker:%d" (include "boltgate.fullname" .) (int .Values.worker.service.port) }}
{{- end }}

{{- define "boltgate.redisUrl" -}}
{{- if .Values.redis.auth.enabled }}
{{- printf "redis://:$(REDIS_PASSWORD)@%s-redis:%d/0" (include "boltgate.fullname" .) (int .Values.redis.port) }}
{{- else }}
{{- printf "redis://%s-redis:%d/0" (include "boltgate.fullname" .) (int .Values.redis.port) }}
{{- end }}
{{- end }}

{{/* BOLTGATE_REDIS_URL: the bundled Redis (its password from its Secret, expanded by Kubernetes
     from REDIS_PASSWORD), an external URL, or an external URL kept in a Secret. */}}
{{- define "boltgate.redisUrlEnv" -}}
{{- if include "boltgate.bundledRedis" . }}
{{- if .Values.redis.auth.enabled }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "boltgate.redisSecretName" . }}
      key: {{ .Values.redis.auth.existingSecretKey }}
{{- end }}
- name: BOLTGATE_REDIS_URL
  value: {{ include "boltgate.redisUrl" . | quote }}
{{- else if .Values.redis.external.existingSecret }}
- name: BOLTGATE_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.external.existingSecret }}
      key: {{ .Values.redis.external.existingSecretKey }}
{{- else }}
- name: BOLTGATE_REDIS_URL
  value: {{ required "redis.external.url is required when redis.enabled is false and state.backend is redis" .Values.redis.external.url | quote }}
{{- end }}
{{- end }}

{{/* The worker token Secret's name (chart-made or given). */}}
{{- define "boltgate.workerTokenSecret" -}}
{{- default (printf "%s-worker-token" (include "boltgate.fullname" .)) .Values.worker.auth.existingSecret }}
{{- end }}

{{/* A generated secret value, kept across upgrades: the value already in the cluster (read back
     with lookup), else a new random one. Call with (dict "root" $ "name" NAME "key" KEY "length" N);
     renders the base64 value. */}}
{{- define "boltgate.keptRandomSecret" -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace .name }}
{{- if and $existing (index $existing.data .key) }}
{{- index $existing.data .key }}
{{- else }}
{{- randAlphaNum .length | b64enc }}
{{- end }}
{{- end }}
