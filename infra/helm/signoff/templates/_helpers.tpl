{{/* Names and labels. */}}
{{- define "signoff.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "signoff.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "signoff.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "signoff.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ $tag }}
{{- end -}}
{{- end -}}

{{/* The SIGNOFF_* environment every container gets: settings, then secrets by reference. */}}
{{- define "signoff.env" -}}
- name: SIGNOFF_TEMPORAL_ADDRESS
  value: {{ required "config.temporalAddress is required (host:port)" .Values.config.temporalAddress | quote }}
- name: SIGNOFF_TEMPORAL_NAMESPACE
  value: {{ .Values.config.temporalNamespace | quote }}
- name: SIGNOFF_TASK_QUEUE
  value: {{ .Values.config.taskQueue | quote }}
- name: SIGNOFF_MLFLOW_TRACKING_URI
  value: {{ required "config.mlflowTrackingUri is required" .Values.config.mlflowTrackingUri | quote }}
{{- with .Values.config.publicUrl }}
- name: SIGNOFF_PUBLIC_URL
  value: {{ . | quote }}
{{- end }}
- name: SIGNOFF_RATE_LIMIT_PER_S
  value: {{ .Values.config.rateLimitPerS | quote }}
- name: SIGNOFF_RATE_LIMIT_BURST
  value: {{ .Values.config.rateLimitBurst | quote }}
- name: SIGNOFF_SHUTDOWN_DRAIN_S
  value: {{ .Values.config.shutdownDrainS | quote }}
- name: SIGNOFF_WORKER_SHUTDOWN_GRACE_S
  value: {{ .Values.config.workerShutdownGraceS | quote }}
- name: SIGNOFF_STARTUP_TIMEOUT_S
  value: {{ .Values.config.startupTimeoutS | quote }}
{{- if .Values.policy.configMap }}
- name: SIGNOFF_POLICY_FILE
  value: /etc/signoff/{{ .Values.policy.key }}
{{- end }}
{{- $secret := required "existingSecret is required: the Secret holding Signoff's secrets" .Values.existingSecret }}
{{- $names := dict "databaseUrl" "SIGNOFF_DATABASE_URL" "jwtSecret" "SIGNOFF_JWT_SECRET" "encryptionKey" "SIGNOFF_ENCRYPTION_KEY" "callbackKey" "SIGNOFF_CALLBACK_KEY" "mlflowToken" "SIGNOFF_MLFLOW_TOKEN" "githubToken" "SIGNOFF_GITHUB_TOKEN" "jenkinsToken" "SIGNOFF_JENKINS_TOKEN" "webOidcClientSecret" "SIGNOFF_WEB_OIDC_CLIENT_SECRET" }}
{{- range $setting, $variable := $names }}
{{- with index $.Values.secretKeys $setting }}
- name: {{ $variable }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ . }}
{{- end }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Pod-level pieces shared by the API, the worker and the upgrade Job. */}}
{{- define "signoff.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
- name: data
  emptyDir:
    sizeLimit: 64Mi
{{- if .Values.policy.configMap }}
- name: policy
  configMap:
    name: {{ .Values.policy.configMap }}
{{- end }}
{{- end -}}

{{- define "signoff.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: /var/lib/signoff
{{- if .Values.policy.configMap }}
- name: policy
  mountPath: /etc/signoff
  readOnly: true
{{- end }}
{{- end -}}
