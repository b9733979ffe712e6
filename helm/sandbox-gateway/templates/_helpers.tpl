{{- define "sandbox-gateway.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sandbox-gateway.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "sandbox-gateway.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "sandbox-gateway.computeDriverAccount" -}}
{{- printf "%s-compute-driver" (include "sandbox-gateway.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* An image of this project: <registry>/<binary>:<tag>. */}}
{{- define "sandbox-gateway.image" -}}
{{- $root := index . 0 -}}
{{- $binary := index . 1 -}}
{{- $tag := $root.Values.images.tag | default $root.Chart.AppVersion -}}
{{- if $root.Values.images.registry -}}
{{- printf "%s/%s:%s" $root.Values.images.registry $binary $tag -}}
{{- else -}}
{{- printf "%s:%s" $binary $tag -}}
{{- end -}}
{{- end -}}

{{/* Socket paths: each driver's socket in a directory it creates (0750) inside a
volume mounted only into that driver and the gateway. */}}
{{- define "sandbox-gateway.computeSocket" -}}/run/compute-driver/sock/compute.sock{{- end -}}
{{- define "sandbox-gateway.credentialsSocket" -}}/run/credentials-driver/sock/credentials.sock{{- end -}}

{{/* The restricted pod security standard, per container; `uid` set with fixed ids. */}}
{{- define "sandbox-gateway.containerSecurity" -}}
{{- $root := index . 0 -}}
{{- $uid := index . 1 -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
{{- if $root.Values.ids.fixed }}
runAsUser: {{ $uid }}
runAsGroup: {{ $root.Values.ids.group }}
{{- end }}
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Peer and socket flags of a driver: with fixed ids the socket is 0660 for the
pod's group and only the gateway's UID may connect; else the one shared UID, 0600. */}}
{{- define "sandbox-gateway.socketFlags" -}}
{{- if .Values.ids.fixed }}
- --socket-group={{ .Values.ids.group }}
- --allowed-uids={{ .Values.ids.gateway }}
{{- end }}
{{- end -}}

{{/* An HTTP health probe set for a container serving /healthz and /readyz on `port`. */}}
{{- define "sandbox-gateway.probes" -}}
startupProbe:
  httpGet: {path: /healthz, port: {{ . }}}
  periodSeconds: 1
  failureThreshold: 60
readinessProbe:
  httpGet: {path: /readyz, port: {{ . }}}
  periodSeconds: 5
livenessProbe:
  httpGet: {path: /healthz, port: {{ . }}}
  periodSeconds: 10
  failureThreshold: 3
{{- end -}}

{{/* Values no schema can express; each message names the value and the fix. */}}
{{- define "sandbox-gateway.validate" -}}
{{- $v := .Values -}}
{{- if and (gt (int $v.replicas) 1) (ne $v.store.type "postgres") -}}
{{- fail (printf "replicas: %d needs store.type=postgres (SQLite lives on one pod's volume); set store.postgres.existingSecret to a Secret holding the URL" (int $v.replicas)) -}}
{{- end -}}
{{- if and (gt (int $v.replicas) 1) $v.computeDriver.enabled (ne $v.computeDriver.backend "kubernetes") -}}
{{- fail (printf "replicas: %d needs computeDriver.backend=kubernetes (process-backend sandboxes live in one pod)" (int $v.replicas)) -}}
{{- end -}}
{{- if not (has $v.computeDriver.backend (list "kubernetes" "process")) -}}
{{- fail (printf "computeDriver.backend: %q is not a backend; use kubernetes or process" $v.computeDriver.backend) -}}
{{- end -}}
{{- if and $v.gateway.tls.clientAuth (not $v.gateway.tls.existingSecret) -}}
{{- fail "gateway.tls.clientAuth needs gateway.tls.existingSecret: a kubernetes.io/tls Secret with tls.crt, tls.key and ca.crt" -}}
{{- end -}}
{{- if and $v.gateway.oidc.enabled (not $v.gateway.oidc.issuer) -}}
{{- fail "gateway.oidc.enabled needs gateway.oidc.issuer (Keycloak: https://<host>/realms/<realm>)" -}}
{{- end -}}
{{- if and $v.gateway.oidc.enabled (not $v.gateway.oidc.audience) -}}
{{- fail "gateway.oidc.enabled needs gateway.oidc.audience" -}}
{{- end -}}
{{- if and (eq $v.store.type "postgres") (not $v.store.postgres.existingSecret) -}}
{{- fail "store.type=postgres needs store.postgres.existingSecret: the name of a Secret whose key store.postgres.key holds postgres://user:password@host/db" -}}
{{- end -}}
{{- if and (eq $v.gateway.kind "shim") (not $v.computeDriver.enabled) -}}
{{- fail "gateway.kind=shim needs computeDriver.enabled (gateway-shim serve requires a compute driver); for the credentials driver beside another gateway use gateway.kind=external" -}}
{{- end -}}
{{- with $v.gateway.controlPlane -}}
{{- if and .url (not .secretExistingSecret) -}}
{{- fail "gateway.controlPlane.url needs gateway.controlPlane.secretExistingSecret (a Secret whose key `secret` is the internal shared secret)" -}}
{{- end -}}
{{- if and .secretExistingSecret (not .url) -}}
{{- fail "gateway.controlPlane.secretExistingSecret needs gateway.controlPlane.url" -}}
{{- end -}}
{{- if and .tenantProviderKeys (not .url) -}}
{{- fail "gateway.controlPlane.tenantProviderKeys needs gateway.controlPlane.url (tenants' keys come from the control plane)" -}}
{{- end -}}
{{- end -}}
{{- with $v.gateway.trustedProxy -}}
{{- if and .enabled (not .peers) (not .secretExistingSecret) -}}
{{- fail "gateway.trustedProxy.enabled needs a check of the proxy: gateway.trustedProxy.peers (the CIDRs it connects from) or gateway.trustedProxy.secretExistingSecret" -}}
{{- end -}}
{{- end -}}
{{- if and (eq $v.gateway.kind "external") (not $v.gateway.external.image) -}}
{{- fail "gateway.kind=external needs gateway.external.image (and gateway.external.args)" -}}
{{- end -}}
{{- if $v.credentialsDriver.enabled -}}
{{- $config := fromYaml $v.credentialsDriver.config -}}
{{- if hasKey $config "Error" -}}
{{- fail (printf "credentialsDriver.config is not YAML: %s" (get $config "Error")) -}}
{{- end -}}
{{- if and $config.credentials (not $v.credentialsDriver.existingSecret) -}}
{{- fail "credentialsDriver.config names credentials: set credentialsDriver.existingSecret to the Secret holding their token_ref / client_secret_ref files" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* `gateway-shim serve` flags (the gateway container and its config check). */}}
{{- define "sandbox-gateway.gatewayArgs" -}}
- serve
- --compute-driver-socket={{ include "sandbox-gateway.computeSocket" . }}
{{- if .Values.credentialsDriver.enabled }}
- --credentials-driver-socket={{ include "sandbox-gateway.credentialsSocket" . }}
{{- end }}
- --listen=0.0.0.0:{{ .Values.gateway.port }}
- --metrics-addr=0.0.0.0:{{ .Values.gateway.metricsPort }}
- --driver-call-timeout={{ .Values.gateway.driverCallTimeout }}
- --shutdown-grace={{ .Values.gateway.shutdownGrace }}
- --log-format={{ .Values.gateway.logFormat }}
- --log-level={{ .Values.gateway.logLevel }}
{{- if .Values.gateway.credentialPolicy }}
- --credential-policy=/etc/gateway/credential-policy.yaml
{{- end }}
{{- if .Values.gateway.accessRules }}
- --access-rules=/etc/gateway/access-rules.yaml
{{- end }}
{{- with .Values.gateway.inference }}
{{- if .fairnessAttribute }}
- --inference-fairness-attribute={{ .fairnessAttribute }}
{{- end }}
{{- if .objective }}
- --inference-objective={{ .objective }}
{{- end }}
{{- end }}
{{- with .Values.gateway.controlPlane }}
{{- if .url }}
- --control-plane-url={{ .url }}
- --control-plane-secret-file=/etc/gateway-control-plane/secret
- --control-plane-timeout={{ .timeout }}
{{- if .insecureHttp }}
- --control-plane-insecure-http
{{- end }}
{{- range $provider, $env := .tenantProviderKeys }}
- --tenant-provider-key={{ $provider }}={{ $env }}
{{- end }}
{{- end }}
{{- end }}
{{- with .Values.gateway.rateLimit }}
{{- if .perMin }}
- --rate-limit-per-min={{ .perMin }}
- --rate-limit-burst={{ .burst }}
{{- end }}
{{- end }}
{{- with .Values.gateway.trustedProxy }}
{{- if .enabled }}
- --trusted-proxy-listen=0.0.0.0:{{ .port }}
{{- range .peers }}
- --trusted-proxy-peer={{ . }}
{{- end }}
{{- if .secretExistingSecret }}
- --trusted-proxy-secret-file=/etc/gateway-proxy/secret
- --trusted-proxy-secret-header={{ .secretHeader }}
{{- end }}
- --trusted-proxy-principal-header={{ .principalHeader }}
{{- if .attributesHeader }}
- --trusted-proxy-attributes-header={{ .attributesHeader }}
{{- end }}
{{- range $header, $category := .attributeHeaders }}
- --trusted-proxy-attribute-header={{ $header }}={{ $category }}
{{- end }}
{{- if .tenantHeader }}
- --trusted-proxy-tenant-header={{ .tenantHeader }}
{{- end }}
{{- if .tenantAttribute }}
- --trusted-proxy-tenant-attribute={{ .tenantAttribute }}
{{- end }}
- --trusted-proxy-admin-role={{ .adminRole }}
{{- if .platformAdminRole }}
- --trusted-proxy-platform-admin-role={{ .platformAdminRole }}
{{- end }}
{{- end }}
{{- end }}
{{- with .Values.gateway.tls }}
{{- if .existingSecret }}
- --tls-cert=/etc/gateway-tls/tls.crt
- --tls-key=/etc/gateway-tls/tls.key
{{- if .clientAuth }}
- --tls-client-ca=/etc/gateway-tls/ca.crt
- --tls-client-auth={{ .clientAuth }}
{{- end }}
{{- end }}
{{- end }}
{{- with .Values.gateway.extraArgs }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The gateway's environment: the store URL (from a Secret for PostgreSQL) and OIDC. */}}
{{- define "sandbox-gateway.gatewayEnv" -}}
- name: GATEWAY_DB_URL
  {{- if eq .Values.store.type "postgres" }}
  valueFrom:
    secretKeyRef:
      name: {{ .Values.store.postgres.existingSecret }}
      key: {{ .Values.store.postgres.key }}
  {{- else }}
  value: sqlite:/var/lib/gateway/store/gateway.db
  {{- end }}
{{- with .Values.gateway.oidc }}
{{- if .enabled }}
- name: OPENSHELL_OIDC_ISSUER
  value: {{ .issuer | quote }}
- name: OPENSHELL_OIDC_AUDIENCE
  value: {{ .audience | quote }}
- name: OPENSHELL_OIDC_ROLES_CLAIM
  value: {{ .rolesClaim | quote }}
- name: OPENSHELL_OIDC_ADMIN_ROLE
  value: {{ .adminRole | quote }}
- name: OPENSHELL_OIDC_USER_ROLE
  value: {{ .userRole | quote }}
- name: OPENSHELL_OIDC_SCOPES_CLAIM
  value: {{ .scopesClaim | quote }}
- name: OPENSHELL_OIDC_CLI_CLIENT_ID
  value: {{ .cliClientId | quote }}
- name: OPENSHELL_OIDC_CLI_SCOPES
  value: {{ .cliScopes | quote }}
- name: GATEWAY_OIDC_TENANT_CLAIM
  value: {{ .tenantClaim | quote }}
- name: GATEWAY_OIDC_PLATFORM_ADMIN_ROLE
  value: {{ .platformAdminRole | quote }}
{{- if .attributeClaims }}
- name: GATEWAY_OIDC_ATTRIBUTE_CLAIMS
  value: {{ include "sandbox-gateway.pairs" .attributeClaims | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The gateway's mounts: each driver's socket volume, its store, its policy. */}}
{{- define "sandbox-gateway.gatewayMounts" -}}
{{- if .Values.computeDriver.enabled }}
- name: compute-socket
  mountPath: /run/compute-driver
{{- end }}
{{- if .Values.credentialsDriver.enabled }}
- name: credentials-socket
  mountPath: /run/credentials-driver
{{- end }}
{{- if eq .Values.gateway.kind "shim" }}
{{- if eq .Values.store.type "sqlite" }}
- name: gateway-data
  mountPath: /var/lib/gateway
{{- end }}
{{- if or .Values.gateway.credentialPolicy .Values.gateway.accessRules }}
- name: gateway-config
  mountPath: /etc/gateway
  readOnly: true
{{- end }}
{{- if .Values.gateway.controlPlane.url }}
- name: gateway-control-plane
  mountPath: /etc/gateway-control-plane
  readOnly: true
{{- end }}
{{- if and .Values.gateway.trustedProxy.enabled .Values.gateway.trustedProxy.secretExistingSecret }}
- name: gateway-proxy
  mountPath: /etc/gateway-proxy
  readOnly: true
{{- end }}
{{- if .Values.gateway.tls.existingSecret }}
- name: gateway-tls
  mountPath: /etc/gateway-tls
  readOnly: true
{{- end }}
{{- end }}
{{- end -}}

{{/* A map as KEY=VALUE,KEY=VALUE (sorted). */}}
{{- define "sandbox-gateway.pairs" -}}
{{- $pairs := list -}}
{{- range $key, $value := . -}}
{{- $pairs = append $pairs (printf "%s=%s" $key $value) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}
