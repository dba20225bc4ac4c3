"""Names shared by every layer: API group, labels, annotations, field manager."""

from __future__ import annotations

GROUP = "chatenv.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

CHATENV_KIND = "ChatEnvironment"
CHATENV_PLURAL = "chatenvironments"
DEVSLOT_KIND = "DevSlot"
DEVSLOT_PLURAL = "devslots"

FIELD_MANAGER = "chatenv-operator"
MANAGED_BY = "chatenv-operator"
PART_OF = "chatenv"

LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_ENVIRONMENT = f"{GROUP}/environment"
LABEL_STAGE = f"{GROUP}/stage"
LABEL_SLOT = f"{GROUP}/slot"
LABEL_DEVSLOT = f"{GROUP}/devslot"

MANAGED_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGED_BY}"

ANNOTATION_SPEC_HASH = f"{GROUP}/applied-hash"
ANNOTATION_CONFIG_HASH = f"{GROUP}/config-hash"
# On an environment's namespace: its host, to which an admission policy pins every Ingress
# in it (deploy/admission.yaml).
ANNOTATION_HOST = f"{GROUP}/host"
ANNOTATION_REFRESHED_AT = f"{GROUP}/refreshed-at"
# A Secret of the operator's namespace that DevSlots may name in spec.agent.secretRefs.
LABEL_AGENT_SECRET = f"{GROUP}/agent-secret"

# Object names inside an environment's namespace.
CONFIGMAP_NAME = "chat-config"
POSTGRES_NAME = "postgres"
POSTGRES_CLIENT_NAME = "postgres-rw"  # the Service clients connect through (a cluster IP)
POSTGRES_SECRET = "postgres-credentials"  # noqa: S105 - a Secret's name
REDIS_NAME = "redis"
REDIS_SECRET = "redis-credentials"  # noqa: S105 - a Secret's name
JAEGER_NAME = "jaeger"
CHAT_NAME = "chat"
INGRESS_NAME = "chat"
NETWORK_POLICY_NAME = "chat-ingress-only"
EGRESS_POLICY_NAME = "chat-egress"
AGENT_EGRESS_POLICY_NAME = "agent-egress"
REDIS_DATA_CLAIM = "redis-data"
QUOTA_NAME = "chat-quota"
LIMIT_RANGE_NAME = "chat-limits"

CHAT_PORT = 8080
ACTIVITY_PORT = 9091  # the chat service's internal port: GET /activity
METRICS_PORT = 9090  # the chat service's metrics port: GET /metrics, never on the Ingress
POSTGRES_PORT = 5432
REDIS_PORT = 6379
JAEGER_OTLP_GRPC_PORT = 4317
JAEGER_OTLP_HTTP_PORT = 4318
JAEGER_UI_PORT = 16686
JAEGER_HEALTH_PORT = 13133

# Events for cluster-scoped objects are recorded in this namespace, as kubectl expects.
EVENTS_NAMESPACE = "default"

LABEL_ISSUE = f"{GROUP}/issue"
LABEL_PR = f"{GROUP}/pr"
LABEL_REPOSITORY = f"{GROUP}/repository"
LABEL_MODE = f"{GROUP}/mode"

AGENT_NAME = "agent"
AGENT_CLUSTER_ROLE = "chatenv-agent"
AGENT_READONLY_CLUSTER_ROLE = "chatenv-agent-readonly"
SLOT_ENV_PREFIX = "slot-"

# Sleeping when idle: the waker asks for a sleeping environment to wake by setting this
# annotation (an RFC 3339 time; an admission policy lets the waker change nothing else).
ANNOTATION_WAKE_REQUESTED = f"{GROUP}/wake-requested-at"
# Starting data: the placeholder password every loaded user gets (`chatenv credentials`).
DATA_CREDENTIALS_SECRET = "data-credentials"  # noqa: S105 - a Secret's name
WAKER_NAME = "chatenv-waker"
WAKER_SERVICE = "waker"  # the ExternalName Service naming it in an environment's namespace
ANNOTATION_TOUCHED_AT = f"{GROUP}/touched-at"  # a DevSlot's last touch, on its environment
# A snapshot's restore (docs/architecture.md, "Starting data"): the Job in the slot's
# namespace, the Secret it reads the source from, and the source's read-only role's password.
RESTORE_NAME = "data-restore"
DATA_SOURCE_SECRET = "data-source"  # noqa: S105 - a Secret's name
SNAPSHOT_READER_SECRET = "snapshot-reader"  # noqa: S105 - a Secret's name
SNAPSHOT_STAGE = "ai-staging"
