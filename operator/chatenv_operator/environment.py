"""A ChatEnvironment resolved against services.yaml: every value decided.

Pure: ``resolve`` takes the custom resource's body and the project
configuration and returns an ``Environment`` whose fields the builders use
directly, or raises ``InvalidSpec`` for what the CRD schema cannot catch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import (
    DNS_LABEL,
    DNS_NAME,
    Egress,
    ProjectConfig,
    Resources,
    TLSConfig,
    parse_duration,
)
from .constants import API_VERSION, CHATENV_KIND

# Namespaces an environment may never take, whatever services.yaml says.
PROTECTED_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})


class InvalidSpec(Exception):
    """The spec passed the schema but cannot be realised; the message says why."""


@dataclass(frozen=True)
class Owner:
    api_version: str
    kind: str
    name: str
    uid: str

    def reference(self, *, controller: bool = True) -> dict[str, Any]:
        return {"apiVersion": self.api_version, "kind": self.kind, "name": self.name,
                "uid": self.uid, "controller": controller, "blockOwnerDeletion": True}


@dataclass(frozen=True)
class Snapshot:
    """Where a snapshot restore reads: the source environment's PostgreSQL, as its read-only
    role ``chat_snapshot``, whose password the operator holds (``holding``)."""

    source: str
    """The source ChatEnvironment's name (SNAPSHOT_NAME, recorded with the data)."""
    namespace: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Environment:
    """Everything the builders need to render one environment."""

    name: str
    owner: Owner
    stage: str
    slot: int | None
    namespace: str
    host: str
    tls: TLSConfig
    suspended: bool
    ingress_class: str | None
    ingress_controller_namespace: str
    chat_image: str
    chat_replicas: int
    chat_resources: Resources
    chat_env: tuple[tuple[str, str], ...]
    postgres_image: str
    postgres_storage_size: str
    postgres_storage_class: str | None
    postgres_keep_on_delete: bool
    postgres_resources: Resources
    redis_image: str
    redis_resources: Resources
    jaeger_enabled: bool
    jaeger_image: str
    jaeger_max_traces: int
    jaeger_resources: Resources
    quota: Mapping[str, str] = field(default_factory=dict)
    limit_default_request: Mapping[str, str] = field(default_factory=dict)
    limit_default: Mapping[str, str] = field(default_factory=dict)
    extra_labels: Mapping[str, str] = field(default_factory=dict)
    ingress_port: int | None = None
    generation: int = 0
    """The ChatEnvironment's metadata.generation (what its status reports on)."""
    trusted_proxies: tuple[str, ...] = ()
    """The ingress controller's address ranges (the chat service's TRUSTED_PROXY_CIDRS)."""
    metrics_namespace: str | None = None
    """The namespace admitted to the chat pods' metrics port, if any."""
    jaeger_public_ui: bool = False
    """Whether /jaeger (Jaeger's UI and query API) is routed on the public host."""
    redis_storage_size: str = "1Gi"
    egress: Egress = field(default_factory=Egress)
    idle: int | None = None
    """Seconds without a request before it sleeps (spec.idle, else its stage's); None:
    never."""
    sleeping: bool = False
    """Asleep (decided by the pass, ``sleeping``): workloads at zero, as when suspended."""
    to_waker: bool = False
    """The Ingress sends the host to the waker: asleep, suspended, or its chat pods not
    serving yet (decided by the pass)."""
    operator_namespace: str | None = None
    """Where the operator and the waker run: admitted to the chat pods' activity port."""
    data_mode: str = "empty"
    """What the database starts with (spec.data.mode): empty, fixtures or snapshot."""
    data_fixtures: str = "demo"
    """The data set loaded by ``migrate --fixtures`` (mode fixtures)."""
    data_source: str | None = None
    """spec.data.source: the environment a snapshot is taken of; None: the one ai-staging."""
    snapshot: Snapshot | None = None
    """The restore to start now (decided by the pass, ``restoring``); None: none to start."""
    data_loaded: bool = False
    """The snapshot is in (decided by the pass from the status): nothing left to restore."""

    @property
    def scaled_down(self) -> bool:
        """No pods run: suspended by a person, or asleep."""
        return self.suspended or self.sleeping

    @property
    def url(self) -> str:
        port = f":{self.ingress_port}" if self.ingress_port else ""
        return f"{'http' if self.tls.mode == 'off' else 'https'}://{self.host}{port}"


def _pattern(template: str, **values: object) -> str:
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", str(value))
    return out


def _resources(spec: Mapping[str, Any] | None, default: Resources) -> Resources:
    """CR resources replace the default per list (requests, limits) when given."""
    if not spec:
        return default

    def text(values: Mapping[str, Any]) -> dict[str, str]:
        return {k: str(v) for k, v in values.items()}  # `cpu: 1` is a quantity too

    return Resources(requests=text(spec.get("requests") or default.requests),
                     limits=text(spec.get("limits") or default.limits))


def default_namespace(config: ProjectConfig, stage: str, slot: int | None) -> str:
    return _pattern(config.stages[stage].namespace, project=config.project, slot=slot)


def default_host(config: ProjectConfig, stage: str, slot: int | None) -> str:
    st = config.stages[stage]
    return _pattern(st.host, project=config.project, slot=slot, baseDomain=st.base_domain)


def resolve(body: Mapping[str, Any], config: ProjectConfig, *,
            operator_namespace: str | None = None) -> Environment:
    """The effective environment for a ChatEnvironment body."""
    meta = body.get("metadata", {})
    spec = body.get("spec", {})
    status = body.get("status") or {}
    stage = spec.get("stage")
    if stage not in config.stages:
        raise InvalidSpec(f"stage {stage!r} has no entry under stages in services.yaml")
    slot = spec.get("slot")

    # The namespace is fixed at first reconcile: later edits of services.yaml move nothing.
    namespace = spec.get("namespace") or status.get("namespace") or default_namespace(
        config, stage, slot)
    if not DNS_LABEL.match(namespace) or len(namespace) > 63:
        raise InvalidSpec(f"namespace {namespace!r} is not a valid namespace name "
                          "(check the stage's namespace pattern in services.yaml)")
    if namespace in PROTECTED_NAMESPACES or namespace.startswith("kube-") or (
            namespace == operator_namespace):
        raise InvalidSpec(f"namespace {namespace!r} is reserved and cannot hold an environment")

    idle = _idle(spec.get("idle"), config.stages[stage].idle)
    host = spec.get("host") or default_host(config, stage, slot)
    if not DNS_NAME.match(host) or len(host) > 253:
        raise InvalidSpec(f"host {host!r} is not a valid DNS name")

    d = config.defaults
    tls_spec = spec.get("tls")
    tls = TLSConfig(mode=tls_spec["mode"], cluster_issuer=tls_spec.get("clusterIssuer"),
                    secret_name=tls_spec.get("secretName")) if tls_spec else d.tls

    chat = spec.get("chat") or {}
    postgres = spec.get("postgres") or {}
    storage = postgres.get("storage") or {}
    redis = spec.get("redis") or {}
    jaeger = spec.get("jaeger") or {}
    labels = {}
    for key, value in (meta.get("labels") or {}).items():
        if key.startswith("chatenv.dev/") and key != "chatenv.dev/environment":
            labels[key] = value

    return Environment(
        name=meta["name"],
        owner=Owner(API_VERSION, CHATENV_KIND, meta["name"], meta.get("uid", "")),
        stage=stage,
        slot=slot,
        namespace=namespace,
        host=host,
        tls=tls,
        suspended=bool(spec.get("suspended", False)),
        ingress_class=d.ingress_class,
        ingress_controller_namespace=d.ingress_controller_namespace,
        ingress_port=d.ingress_port,
        chat_image=chat.get("image") or config.images.chat,
        chat_replicas=chat.get("replicas", d.chat_replicas),
        chat_resources=_resources(chat.get("resources"), d.chat_resources),
        chat_env=tuple((e["name"], e["value"]) for e in chat.get("env") or ()),
        postgres_image=postgres.get("image") or config.images.postgres,
        postgres_storage_size=str(storage.get("size") or d.postgres_storage_size),
        postgres_storage_class=storage.get("storageClassName") or d.postgres_storage_class,
        postgres_keep_on_delete=bool(postgres.get("keepOnDelete", False)),
        postgres_resources=_resources(postgres.get("resources"), d.postgres_resources),
        redis_image=redis.get("image") or config.images.redis,
        redis_resources=_resources(redis.get("resources"), d.redis_resources),
        jaeger_enabled=jaeger.get("enabled", d.jaeger_enabled),
        jaeger_image=jaeger.get("image") or config.images.jaeger,
        jaeger_max_traces=jaeger.get("maxTraces", d.jaeger_max_traces),
        jaeger_resources=_resources(jaeger.get("resources"), d.jaeger_resources),
        quota=d.quota,
        limit_default_request=d.limit_default_request,
        limit_default=d.limit_default,
        extra_labels=labels,
        generation=int(meta.get("generation") or 0),
        trusted_proxies=d.trusted_proxies,
        metrics_namespace=d.metrics_namespace,
        jaeger_public_ui=bool(jaeger.get("publicUI", d.jaeger_public_ui)),
        redis_storage_size=d.redis_storage_size,
        egress=d.egress,
        idle=idle,
        operator_namespace=operator_namespace,
        **_data(spec.get("data") or {}),
    )


def _data(spec: Mapping[str, Any]) -> dict[str, Any]:
    """spec.data's fields (the schema checked them; immutable after creation)."""
    return {"data_mode": spec.get("mode") or "empty",
            "data_fixtures": spec.get("fixtures") or "demo",
            "data_source": spec.get("source")}


def _idle(spec: Any, stage_default: int | None) -> int | None:
    """spec.idle (a duration, or never), else the stage's default."""
    if spec is None:
        return stage_default
    if spec == "never":
        return None
    try:
        return parse_duration(str(spec))
    except ValueError as e:
        raise InvalidSpec(f"spec.idle: {e}") from None
