{{/* The chart name (label app.kubernetes.io/name). */}}
{{- define "zilliz-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Object names: the release name when it contains the chart name (`helm install zilliz-operator`
gives the names of deploy/), otherwise <release>-<chart>.
*/}}
{{- define "zilliz-operator.fullname" -}}
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

{{/* Labels of every object: deploy/'s two, and Helm's usual ones. */}}
{{- define "zilliz-operator.labels" -}}
app.kubernetes.io/name: {{ include "zilliz-operator.name" . }}
app.kubernetes.io/part-of: zilliz-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The operator Pods' labels, which the Deployment, the metrics Service and the anti-affinity
select on. Exactly deploy/'s: a Deployment's selector cannot change, so an install moved from
kustomize to this chart keeps its Deployment.
*/}}
{{- define "zilliz-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "zilliz-operator.name" . }}
app.kubernetes.io/component: operator
{{- end }}
