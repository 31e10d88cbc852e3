{{/*
The services, as the code wires them (cmd/services.ts and each services/<name>/src/main.ts):
its gRPC port, the store it uses, whether it uses the Kafka bus, and the peers it dials through
*_SERVICE_ADDR settings. `dials` are peers reached without such a setting: routing and presence call each
edge at the address the edge registers with the connection service (ADVERTISE_ADDR, the pod IP), and a
message-store replica passes an append on to the replica that writes its conversation, at the address
that one put in its seq lease (ADVERTISE_ADDR, the pod IP).
NetworkPolicies are derived from this table, so they admit exactly the callers.
*/}}
{{- define "chat.catalog" -}}
edge: {port: 9100, addr: EDGE_SERVICE_ADDR, store: "", bus: false, peers: [connection, group, message-store, presence, push], dials: []}
connection: {port: 9101, addr: CONNECTION_SERVICE_ADDR, store: redis, bus: false, peers: [], dials: []}
message-store: {port: 9102, addr: MESSAGE_STORE_SERVICE_ADDR, store: cassandra, bus: true, peers: [group], dials: [message-store]}
routing: {port: 9103, addr: ROUTING_SERVICE_ADDR, store: "", bus: true, peers: [group, connection], dials: [edge]}
presence: {port: 9104, addr: PRESENCE_SERVICE_ADDR, store: redis, bus: false, peers: [connection, group], dials: [edge]}
group: {port: 9105, addr: GROUP_SERVICE_ADDR, store: postgres, bus: true, peers: [message-store], dials: []}
push: {port: 9106, addr: PUSH_SERVICE_ADDR, store: postgres, bus: true, peers: [connection, group, message-store], dials: []}
{{- end -}}

{{- define "chat.publicPort" -}}8080{{- end -}}

{{- define "chat.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "chat.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The name of one service's objects: chat-<service>. Args: (list $ "service"). */}}
{{- define "chat.serviceName" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "chat.fullname" $root | trunc 48 | trimSuffix "-") (index . 1) -}}
{{- end -}}

{{- define "chat.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "chat.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: chat
{{- end -}}

{{/* Selector labels of one service's pods. Args: (list $ "service"). */}}
{{- define "chat.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "chat.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "chat.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "chat.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "chat.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "chat.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
fsGroup: 1000
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "chat.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Infrastructure settings of a store driver. Args: (list $ "redis"|"postgres"|"cassandra"). */}}
{{- define "chat.storeEnv" -}}
{{- $root := index . 0 -}}
{{- $store := index . 1 -}}
{{- if eq $store "redis" }}
{{- if not $root.Values.redis.existingSecret }}
REDIS_URL: {{ required "redis.url or redis.existingSecret is required" $root.Values.redis.url | quote }}
{{- end }}
REDIS_KEY_PREFIX: {{ $root.Values.redis.keyPrefix | default "chat" | quote }}
{{- else if eq $store "postgres" }}
{{- if not $root.Values.postgres.existingSecret }}
PG_URL: {{ required "postgres.url or postgres.existingSecret is required" $root.Values.postgres.url | quote }}
{{- end }}
{{- else if eq $store "cassandra" }}
CASSANDRA_CONTACT_POINTS: {{ required "cassandra.contactPoints is required" (join "," $root.Values.cassandra.contactPoints | default "") | quote }}
CASSANDRA_LOCAL_DC: {{ $root.Values.cassandra.localDc | quote }}
CASSANDRA_KEYSPACE: {{ $root.Values.cassandra.keyspace | quote }}
{{- end }}
{{- end -}}

{{- define "chat.busEnv" -}}
BUS_DRIVER: "kafka"
KAFKA_BROKERS: {{ required "kafka.brokers is required" (join "," .Values.kafka.brokers | default "") | quote }}
KAFKA_PARTITIONS: {{ .Values.kafka.partitions | quote }}
BUS_NAMESPACE: {{ .Values.kafka.namespace | quote }}
KAFKA_LINGER_MS: {{ .Values.kafka.lingerMs | quote }}
{{- end -}}

{{- define "chat.commonEnv" -}}
HOST: "0.0.0.0"
LOG_LEVEL: {{ .Values.common.logLevel | quote }}
SHUTDOWN_TIMEOUT_MS: {{ .Values.common.shutdownTimeoutMs | quote }}
{{- with .Values.common.otlpEndpoint }}
OTEL_EXPORTER_OTLP_ENDPOINT: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* Connection URLs held in existing secrets, as env entries. Args: (list $ store). */}}
{{- define "chat.storeSecretEnv" -}}
{{- $root := index . 0 -}}
{{- $store := index . 1 -}}
{{- if and (eq $store "redis") $root.Values.redis.existingSecret }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef: {name: {{ $root.Values.redis.existingSecret | quote }}, key: {{ $root.Values.redis.existingSecretKey | quote }}}
{{- else if and (eq $store "postgres") $root.Values.postgres.existingSecret }}
- name: PG_URL
  valueFrom:
    secretKeyRef: {name: {{ $root.Values.postgres.existingSecret | quote }}, key: {{ $root.Values.postgres.existingSecretKey | quote }}}
{{- end }}
{{- end -}}

{{/* The settings of one service's ConfigMap. Args: (list $root "service"). */}}
{{- define "chat.configData" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- $catalog := include "chat.catalog" $root | fromYaml -}}
{{- $svc := index $catalog $name -}}
{{- $values := index $root.Values.services $name -}}
{{ include "chat.commonEnv" $root }}
PORT: {{ $svc.port | quote }}
{{- with $svc.store }}
STORE_DRIVER: {{ . | quote }}
{{- include "chat.storeEnv" (list $root .) | trim | nindent 0 }}
{{- end }}
{{- if $svc.bus }}
{{- include "chat.busEnv" $root | nindent 0 }}
{{- end }}
{{- range $peer := $svc.peers }}
{{- $p := index $catalog $peer }}
{{ $p.addr }}: {{ printf "%s:%v" (include "chat.serviceName" (list $root $peer)) $p.port | quote }}
{{- end }}
{{- if eq $name "edge" }}
PUBLIC_HOST: "0.0.0.0"
PUBLIC_PORT: {{ include "chat.publicPort" $root | quote }}
{{- if and $root.Values.ingress.enabled (not (hasKey $values.settings "PUBLIC_URL")) }}
PUBLIC_URL: {{ printf "%s://%s" (ternary "https" "http" (ne $root.Values.ingress.tlsSecretName "")) $root.Values.ingress.host | quote }}
{{- end }}
{{- with $root.Values.auth.jwksUrl }}
JWT_JWKS_URL: {{ . | quote }}
{{- end }}
{{- if $root.Values.auth.jwksSecret.name }}
JWT_JWKS_FILE: {{ printf "/var/run/secrets/chat/jwks/%s" $root.Values.auth.jwksSecret.key | quote }}
{{- end }}
{{- with $root.Values.auth.issuer }}
JWT_ISSUER: {{ . | quote }}
{{- end }}
{{- with $root.Values.auth.audience }}
JWT_AUDIENCE: {{ . | quote }}
{{- end }}
{{- end }}
{{- range $key, $value := $values.settings }}
{{ $key }}: {{ $value | toString | quote }}
{{- end }}
{{- end -}}
