{{/*
Names and labels. Labels follow the Kubernetes recommended set; selector labels are the
immutable subset (name, instance, component) a Deployment selects its pods by.
*/}}

{{- define "genhub.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* "<release>-genhub", or the release name when it already says genhub. */}}
{{- define "genhub.fullname" -}}
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

{{- define "genhub.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The object name of a component: "<fullname>-<component>". Takes (dict "root" $ "component" c). */}}
{{- define "genhub.componentName" -}}
{{- printf "%s-%s" (include "genhub.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels of a component. Takes (dict "root" $ "component" c). */}}
{{- define "genhub.selectorLabels" -}}
app.kubernetes.io/name: {{ include "genhub.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* All labels of a component's objects. Takes (dict "root" $ "component" c). */}}
{{- define "genhub.labels" -}}
helm.sh/chart: {{ include "genhub.chart" .root }}
{{ include "genhub.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: genhub
{{- end }}

{{/* Labels of objects that belong to no one component. */}}
{{- define "genhub.releaseLabels" -}}
{{ include "genhub.labels" (dict "root" . "component" "release") }}
{{- end }}

{{/* The image reference. Takes (dict "root" $ "image" {name, tag}). */}}
{{- define "genhub.image" -}}
{{- $global := .root.Values.image }}
{{- $tag := .image.tag | default $global.tag | default .root.Chart.AppVersion }}
{{- $repository := printf "%s/%s" $global.repository .image.name }}
{{- if $global.registry }}
{{- $repository = printf "%s/%s" $global.registry $repository }}
{{- end }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}

{{/* The chart-managed Secret holding URLs given inline in values (connections.*.url). */}}
{{- define "genhub.connectionsSecret" -}}
{{- printf "%s-connections" (include "genhub.fullname" .) }}
{{- end }}

{{/*
An environment variable from a connection's URL: the chart's own Secret when the URL is given
inline, else the existing Secret. Takes (dict "root" $ "env" NAME "conn" CONNECTION "inline" KEY),
where CONNECTION has url and existingSecret {name, key} (or the management pair when "management").
*/}}
{{- define "genhub.connectionEnv" -}}
{{- $url := .conn.url }}
{{- $existing := .conn.existingSecret }}
{{- if .management }}
{{- $url = .conn.managementUrl }}
{{- $existing = .conn.managementExistingSecret }}
{{- end -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      {{- if $url }}
      name: {{ include "genhub.connectionsSecret" .root }}
      key: {{ .inline }}
      {{- else }}
      name: {{ required (printf "%s: set its url or existingSecret.name" .env) $existing.name }}
      key: {{ $existing.key }}
      {{- end }}
{{- end }}

{{/* The media store's secret settings (libs/media), when configured. Takes the root context. */}}
{{- define "genhub.mediaEnv" -}}
{{- $media := .Values.media }}
{{- if $media.backend }}
{{- with $media.credentials.existingSecret }}
{{- if .name }}
- name: GENHUB_MEDIA_S3_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ .accessKeyIdKey }}
- name: GENHUB_MEDIA_S3_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ .secretAccessKeyKey }}
{{- end }}
{{- end }}
{{- with $media.urlKeys.existingSecret }}
{{- if .name }}
- name: GENHUB_MEDIA_URL_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ .key }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* The media store's plain settings, for a component's ConfigMap. Takes the root context. */}}
{{- define "genhub.mediaConfig" -}}
{{- $media := .Values.media }}
GENHUB_MEDIA_BACKEND: {{ $media.backend | quote }}
{{- if $media.backend }}
GENHUB_MEDIA_S3_BUCKET: {{ $media.s3.bucket | quote }}
GENHUB_MEDIA_S3_ENDPOINT: {{ $media.s3.endpoint | quote }}
GENHUB_MEDIA_S3_REGION: {{ $media.s3.region | quote }}
GENHUB_MEDIA_PUBLIC_URL: {{ $media.publicUrl | quote }}
{{- end }}
{{- end }}

{{/* The provider-secrets key variable (gateway and workers). Takes the root context. */}}
{{- define "genhub.secretsKeyEnv" -}}
- name: GENHUB_SECRETS_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ required "secretsKey.existingSecret.name is required" .Values.secretsKey.existingSecret.name }}
      key: {{ .Values.secretsKey.existingSecret.key }}
{{- end }}

{{/* The gateway's API key secrets: the pepper (required with auth on) and the bootstrap key. */}}
{{- define "genhub.authEnv" -}}
{{- $auth := .Values.auth }}
{{- if $auth.enabled }}
- name: GENHUB_API_KEY_PEPPER
  valueFrom:
    secretKeyRef:
      name: {{ required "auth.apiKeyPepper.existingSecret.name is required with auth.enabled" $auth.apiKeyPepper.existingSecret.name }}
      key: {{ $auth.apiKeyPepper.existingSecret.key }}
{{- end }}
{{- with $auth.bootstrapAdminKey.existingSecret }}
{{- if .name }}
- name: GENHUB_BOOTSTRAP_ADMIN_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ .key }}
{{- end }}
{{- end }}
{{- end }}

{{/* task-store's headless Service: its name resolves to every ready task-store pod. */}}
{{- define "genhub.taskstoreHeadless" -}}
{{- printf "%s-headless" (include "genhub.componentName" (dict "root" . "component" "taskstore")) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The task-store address the gateway and workers call: the headless Service, so a
client's channel reaches every replica (round-robin; docs/operations.md). */}}
{{- define "genhub.taskstoreAddr" -}}
{{- printf "%s:%d" (include "genhub.taskstoreHeadless" .) (int .Values.taskstore.ports.grpc) }}
{{- end }}

{{/* Settings every component's ConfigMap carries. Takes the root context. */}}
{{- define "genhub.commonConfig" -}}
GENHUB_LOG_LEVEL: {{ .Values.logLevel | quote }}
GENHUB_SHUTDOWN_DELAY_SECONDS: {{ .Values.shutdownDelaySeconds | toString | quote }}
{{- end }}
