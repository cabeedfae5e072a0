{{/* The chart's name. */}}
{{- define "apiload-webhook.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The name of every object: the release name, with the chart's unless it holds it already. */}}
{{- define "apiload-webhook.fullname" -}}
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

{{- define "apiload-webhook.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "apiload-webhook.selectorLabels" -}}
app.kubernetes.io/name: {{ include "apiload-webhook.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "apiload-webhook.labels" -}}
helm.sh/chart: {{ include "apiload-webhook.chart" . }}
{{ include "apiload-webhook.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: admission-webhook
app.kubernetes.io/part-of: apiload
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "apiload-webhook.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "apiload-webhook.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "apiload-webhook.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "apiload-webhook.tlsSecretName" -}}
{{- printf "%s-tls" (include "apiload-webhook.fullname" .) }}
{{- end }}

{{- define "apiload-webhook.configMapName" -}}
{{- printf "%s-config" (include "apiload-webhook.fullname" .) }}
{{- end }}

{{/* The names the API server may use for the Service: it dials <service>.<namespace>.svc. */}}
{{- define "apiload-webhook.dnsNames" -}}
{{- $svc := include "apiload-webhook.fullname" . }}
{{- $ns := .Release.Namespace }}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.%s" $svc $ns .Values.clusterDomain) | toJson }}
{{- end }}

{{/*
The serving certificate when the chart makes it (certManager.enabled false):
the one already in the cluster when the TLS Secret exists with all three keys,
so that upgrades keep it; otherwise a new CA and a certificate it signs.
Generated once per render and shared by the Secret and the
ValidatingWebhookConfiguration, which must agree: kept in the root context,
which every template of the chart shares. Returns base64 values as JSON.
*/}}
{{- define "apiload-webhook.selfSignedCert" -}}
{{- if not (hasKey . "apiloadGeneratedCert") }}
{{- $name := include "apiload-webhook.tlsSecretName" . }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace $name }}
{{- $data := dict }}
{{- if $existing }}
{{- $data = default (dict) $existing.data }}
{{- end }}
{{- $cert := dict }}
{{- if and (index $data "tls.crt") (index $data "tls.key") (index $data "ca.crt") }}
{{- $cert = dict "crt" (index $data "tls.crt") "key" (index $data "tls.key") "ca" (index $data "ca.crt") }}
{{- else }}
{{- $days := int .Values.selfSignedCert.validityDays }}
{{- $ca := genCA (printf "%s-ca" (include "apiload-webhook.fullname" .)) $days }}
{{- $dns := include "apiload-webhook.dnsNames" . | fromJsonArray }}
{{- $leaf := genSignedCert (index $dns 2) nil $dns $days $ca }}
{{- $cert = dict "crt" ($leaf.Cert | b64enc) "key" ($leaf.Key | b64enc) "ca" ($ca.Cert | b64enc) }}
{{- end }}
{{- $_ := set . "apiloadGeneratedCert" $cert }}
{{- end }}
{{- get . "apiloadGeneratedCert" | toJson }}
{{- end }}

{{/* The webhook's deadline: requestTimeout, or one second under timeoutSeconds. */}}
{{- define "apiload-webhook.requestTimeout" -}}
{{- if .Values.requestTimeout }}
{{- .Values.requestTimeout }}
{{- else }}
{{- printf "%ds" (max 1 (sub (int .Values.timeoutSeconds) 1)) }}
{{- end }}
{{- end }}
