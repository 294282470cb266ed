{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "clip-triton.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-wide prefix of every object name (kept short enough for the suffixes below). */}}
{{- define "clip-triton.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "clip-triton.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "clip-triton.triton.fullname" -}}{{ include "clip-triton.fullname" . }}-triton{{- end -}}
{{- define "clip-triton.gateway.fullname" -}}{{ include "clip-triton.fullname" . }}-gateway{{- end -}}

{{/* Labels on every object. */}}
{{- define "clip-triton.labels" -}}
helm.sh/chart: {{ include "clip-triton.chart" . }}
app.kubernetes.io/name: {{ include "clip-triton.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: clip-triton
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels per component: call with (dict "ctx" $ "component" "triton"). */}}
{{- define "clip-triton.selectorLabels" -}}
app.kubernetes.io/name: {{ include "clip-triton.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "clip-triton.componentLabels" -}}
{{ include "clip-triton.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "clip-triton.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "clip-triton.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Images: "repository:tag", tag defaulting to the chart's appVersion. */}}
{{- define "clip-triton.image" -}}
{{- printf "%s:%s" .repository (default .appVersion .tag | toString) -}}
{{- end -}}
{{- define "clip-triton.triton.image" -}}
{{- include "clip-triton.image" (dict "repository" .Values.triton.image.repository "tag" .Values.triton.image.tag "appVersion" .Chart.AppVersion) -}}
{{- end -}}
{{- define "clip-triton.gateway.image" -}}
{{- include "clip-triton.image" (dict "repository" .Values.gateway.image.repository "tag" .Values.gateway.image.tag "appVersion" .Chart.AppVersion) -}}
{{- end -}}
{{- define "clip-triton.export.image" -}}
{{- $img := .Values.modelRepository.export.image -}}
{{- include "clip-triton.image" (dict "repository" $img.repository "tag" $img.tag "appVersion" .Chart.AppVersion) -}}
{{- end -}}

{{/* Triton's headless gRPC Service (every pod's address), and the gateway's round-robin target on it. */}}
{{- define "clip-triton.triton.grpcHeadless" -}}{{ include "clip-triton.triton.fullname" . }}-grpc{{- end -}}
{{- define "clip-triton.tritonGrpcAddress" -}}
{{- printf "dns:///%s:%d" (include "clip-triton.triton.grpcHeadless" .) (int .Values.triton.containerPorts.grpc) -}}
{{- end -}}

{{/* Export: the command line shared by the export Job (pvc mode) and the init container (initContainer mode). */}}
{{- define "clip-triton.exportArgs" -}}
- --target
- gpu
- --repository
- /models/repository
- --versions
- {{ join "," .Values.clip.versions | quote }}
- --pretrained
- {{ .Values.clip.pretrained | quote }}
- --triton-image
- {{ include "clip-triton.triton.image" . | quote }}
- --gpu-memory-gb
- {{ .Values.clip.gpuMemoryGB | quote }}
{{- if .Values.clip.fp16 }}
- --fp16
{{- end }}
{{- range .Values.clip.extraExportArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}

{{/* A digest of what is exported: names the export Job and its completion marker, so changing versions
     (or weights) runs a new Job and makes Triton pods wait for it. */}}
{{- define "clip-triton.exportDigest" -}}
{{- dict "versions" .Values.clip.versions "pretrained" .Values.clip.pretrained "fp16" .Values.clip.fp16 "extra" .Values.clip.extraExportArgs "gpuMemoryGB" .Values.clip.gpuMemoryGB "triton" (include "clip-triton.triton.image" .) "image" (include "clip-triton.export.image" .) | toJson | sha256sum | trunc 10 -}}
{{- end -}}

{{- define "clip-triton.exportMarker" -}}/models/.export-{{ include "clip-triton.exportDigest" . }}.done{{- end -}}

{{- define "clip-triton.modelClaimName" -}}
{{- default (printf "%s-models" (include "clip-triton.fullname" .)) .Values.modelRepository.pvc.existingClaim -}}
{{- end -}}

{{/* Where the gateway reads its API keys, if auth is configured. */}}
{{- define "clip-triton.apiKeysSecretName" -}}
{{- if .Values.gateway.apiKeys.existingSecret -}}
{{- .Values.gateway.apiKeys.existingSecret -}}
{{- else if .Values.gateway.apiKeys.keys -}}
{{- printf "%s-api-keys" (include "clip-triton.gateway.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Checks that JSON Schema cannot express. */}}
{{- define "clip-triton.validate" -}}
{{- if not (has .Values.gateway.config.defaultVersion .Values.clip.versions) -}}
{{- fail (printf "gateway.config.defaultVersion %q must be one of clip.versions %v" .Values.gateway.config.defaultVersion .Values.clip.versions) -}}
{{- end -}}
{{- if and .Values.triton.autoscaling.enabled (gt (int .Values.triton.autoscaling.minReplicas) (int .Values.triton.autoscaling.maxReplicas)) -}}
{{- fail "triton.autoscaling.minReplicas must not exceed maxReplicas" -}}
{{- end -}}
{{- $modes := .Values.modelRepository.pvc.accessModes -}}
{{- $several := or .Values.triton.autoscaling.enabled (gt (int .Values.triton.replicaCount) 1) -}}
{{- if and (eq .Values.modelRepository.mode "pvc") $several (or (has "ReadWriteOnce" $modes) (has "ReadWriteOncePod" $modes)) (not (has "ReadWriteMany" $modes)) (not (has "ReadOnlyMany" $modes)) -}}
{{- fail "modelRepository.pvc.accessModes ReadWriteOnce cannot serve more than one Triton replica (triton.replicaCount > 1 or triton.autoscaling.enabled): pods on other nodes could never mount it. Use ReadWriteMany storage (and say so in accessModes, also for an existingClaim), or modelRepository.mode=initContainer." -}}
{{- end -}}
{{- if and .Values.gateway.autoscaling.enabled (gt (int .Values.gateway.autoscaling.minReplicas) (int .Values.gateway.autoscaling.maxReplicas)) -}}
{{- fail "gateway.autoscaling.minReplicas must not exceed maxReplicas" -}}
{{- end -}}
{{- end -}}
