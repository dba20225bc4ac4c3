"""services.yaml: the project's configuration, parsed and validated.

Pure data: ``parse_config`` takes the loaded YAML document and returns a
frozen ``ProjectConfig`` or raises ``ConfigError`` naming the bad field
(``services.yaml: slots.maxSlots: ...``). Only ``load_config`` reads a file.
Unknown keys are errors too, so a typo cannot silently fall back to a default.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
IMAGE = re.compile(r"^[^\s]+$")
# A Kubernetes quantity, as a Pod spec takes it (and as the CRDs' schemas check it).
QUANTITY = re.compile(r"^(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
                      r"([eE][+-]?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")
CPU = MEMORY = STORAGE = QUANTITY
DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
QUOTA_KEYS = {
    "requests.cpu": CPU, "requests.memory": MEMORY, "limits.cpu": CPU, "limits.memory": MEMORY,
    "requests.storage": MEMORY, "persistentvolumeclaims": re.compile(r"^[0-9]+$"),
    "pods": re.compile(r"^[0-9]+$"), "services": re.compile(r"^[0-9]+$"),
    "secrets": re.compile(r"^[0-9]+$"), "configmaps": re.compile(r"^[0-9]+$"),
}
STAGES = ("dev", "ai-staging", "ai")
DATA_MODES = ("empty", "fixtures", "snapshot")
IDLE_MIN, IDLE_MAX = 10, 720 * 3600
TLS_MODES = ("off", "clusterIssuer", "secret")


class ConfigError(Exception):
    """services.yaml is invalid; the message names the field."""


def parse_duration(text: str) -> int:
    """'24h', '1h30m', '7d', '90s' -> seconds. Raises ValueError."""
    match = DURATION.match(text.strip()) if isinstance(text, str) else None
    if not match or not any(match.groups()):
        raise ValueError(f"not a duration like 24h, 90m or 1h30m: {text!r}")
    d, h, m, s = (int(g or 0) for g in match.groups())
    return ((d * 24 + h) * 60 + m) * 60 + s


def format_duration(seconds: int) -> str:
    """Seconds -> the shortest '1h30m'-style text."""
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


@dataclass(frozen=True)
class Resources:
    """Container requests and limits, as Kubernetes quantities."""

    requests: Mapping[str, str] = field(default_factory=dict)
    limits: Mapping[str, str] = field(default_factory=dict)

    def to_manifest(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        if self.requests:
            out["requests"] = dict(self.requests)
        if self.limits:
            out["limits"] = dict(self.limits)
        return out


@dataclass(frozen=True)
class StageConfig:
    namespace: str
    """Namespace pattern; placeholders {project} and (stage ai) {slot}."""
    base_domain: str
    """The stage's DNS domain."""
    host: str
    """Ingress host pattern; placeholders {baseDomain}, {project}, {slot}."""
    idle: int | None = None
    """Seconds without a request after which the stage's environments sleep, unless their
    spec.idle says otherwise; None: they never do."""


@dataclass(frozen=True)
class Images:
    chat: str
    postgres: str
    redis: str
    jaeger: str


@dataclass(frozen=True)
class SlotsConfig:
    max_slots: int
    """Size of the DevSlot pool: slot numbers are 1..max_slots."""
    default_ttl: int
    """Seconds a DevSlot lives after its last activity, unless its spec says otherwise."""
    max_ttl: int
    """Upper bound for a DevSlot's spec.ttl, in seconds."""
    expiry_warning: int
    """Seconds before expiry at which a Warning Event is recorded."""
    data: str = "empty"
    """What a DevSlot's database starts with unless its spec.data says: empty, fixtures or
    snapshot (of the ai-staging environment)."""
    agent_secrets: tuple[str, ...] = ()
    """Secrets of the operator's namespace that a DevSlot's spec.agent.secretRefs may name
    (copied into the slot's namespace for its agent); a Secret labelled
    chatenv.dev/agent-secret=true may be named too. Any other is refused: the agent's image
    is the DevSlot author's choice, and it would read the copy."""


@dataclass(frozen=True)
class TLSConfig:
    mode: str
    cluster_issuer: str | None = None
    secret_name: str | None = None


@dataclass(frozen=True)
class Defaults:
    tls: TLSConfig
    ingress_class: str | None
    ingress_controller_namespace: str
    ingress_port: int | None
    """The port users reach the ingress controller on, when it is not the scheme's
    default (a local cluster's loopback port); environment URLs include it."""
    chat_replicas: int
    chat_resources: Resources
    postgres_storage_size: str
    postgres_storage_class: str | None
    postgres_resources: Resources
    redis_resources: Resources
    jaeger_enabled: bool
    jaeger_max_traces: int
    jaeger_resources: Resources
    quota: Mapping[str, str]
    limit_default_request: Mapping[str, str]
    limit_default: Mapping[str, str]
    trusted_proxies: tuple[str, ...] = ()
    """defaults.ingress.trustedProxyCIDRs: the address ranges of the ingress controller's
    pods; the chat service reads a client's address from X-Forwarded-For only when the
    request comes from one of them (TRUSTED_PROXY_CIDRS). Empty: it uses the TCP peer's."""
    metrics_namespace: str | None = None
    """defaults.metrics.namespace: the namespace whose pods (Prometheus) may scrape the chat
    pods' metrics port; None: nothing outside the environment's namespace reaches it."""
    jaeger_public_ui: bool = False
    """defaults.jaeger.publicUI: route /jaeger (Jaeger's UI and query API: every request's
    path and SQL text) on the environment's public host. Off unless asked for."""
    redis_storage_size: str = "1Gi"
    """defaults.redis.storage.size: Redis's volume (its append-only file: sessions survive
    a restart), in PostgreSQL's storage class."""
    egress: Egress = field(default_factory=lambda: Egress())
    """defaults.egress: where an environment's pods may connect outside their namespace."""


@dataclass(frozen=True)
class Egress:
    """Where an environment's pods may open connections, beyond their own namespace."""

    dns_namespace: str = "kube-system"
    """The cluster DNS's namespace."""
    dns_pod_labels: Mapping[str, str] = field(default_factory=lambda: {"k8s-app": "kube-dns"})
    """The labels of the cluster DNS's pods (any port: policies see the pod's port, after the
    Service's translation, which need not be 53)."""
    agent_denied_cidrs: tuple[str, ...] = ()
    """Ranges an agent may not reach, beside link-local (cloud metadata: always denied)."""
    api_server_cidrs: tuple[str, ...] = ()
    """The API server's addresses, for agents, when agentDeniedCIDRs would cover them."""


@dataclass(frozen=True)
class ProjectConfig:
    project: str
    stages: Mapping[str, StageConfig]
    images: Images
    slots: SlotsConfig
    defaults: Defaults


class _Section:
    """Reads one mapping of the document, remembering its path for error messages."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"services.yaml: {path or 'the document'}: must be a mapping")
        self.data = data
        self.path = path
        self.seen: set[str] = set()

    def where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, why: str) -> ConfigError:
        return ConfigError(f"services.yaml: {self.where(key)}: {why}")

    def raw(self, key: str, default: Any = ..., required: bool = True) -> Any:
        self.seen.add(key)
        if key in self.data and self.data[key] is not None:
            return self.data[key]
        if default is not ...:
            return default
        if required:
            raise self.fail(key, "is required")
        return None

    def text(self, key: str, pattern: re.Pattern[str] | None = None, default: Any = ...,
            what: str = "", max_length: int = 253) -> Any:
        value = self.raw(key, default)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"must be a non-empty string, got {value!r}")
        if len(value) > max_length:
            raise self.fail(key, f"must be at most {max_length} characters")
        if pattern is not None and not pattern.match(value):
            expected = what or f"of the form {pattern.pattern}"
            raise self.fail(key, f"must be {expected}, got {value!r}")
        return value

    def integer(self, key: str, low: int, high: int, default: Any = ...) -> int:
        value = self.raw(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise self.fail(key, f"must be an integer between {low} and {high}, got {value!r}")
        return value

    def boolean(self, key: str, default: Any = ...) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {value!r}")
        return value

    def duration(self, key: str, default: Any = ...) -> int:
        value = self.raw(key, default)
        try:
            seconds = parse_duration(value)
        except ValueError as e:
            raise self.fail(key, str(e)) from None
        if seconds <= 0:
            raise self.fail(key, "must be longer than zero")
        return seconds

    def section(self, key: str, required: bool = True) -> _Section:
        return _Section(self.raw(key, ... if required else {}), self.where(key))

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise ConfigError(f"services.yaml: {self.where(unknown[0])}: unknown key")


def _resources(parent: _Section, key: str) -> Resources:
    sec = parent.section(key, required=False)
    out: dict[str, dict[str, str]] = {}
    for kind in ("requests", "limits"):
        out[kind] = _quantities(sec, kind, {"cpu": CPU, "memory": MEMORY})
    sec.done()
    return Resources(requests=out["requests"], limits=out["limits"])


def _quantities(parent: _Section, key: str,
                allowed: Mapping[str, re.Pattern[str]]) -> dict[str, str]:
    """A mapping of Kubernetes quantities; integers are accepted and kept as text."""
    sec = parent.section(key, required=False)
    out = {}
    for name, value in sec.data.items():
        sec.seen.add(name)
        if name not in allowed:
            raise sec.fail(name, f"unknown key (allowed: {', '.join(sorted(allowed))})")
        out[name] = _quantity(sec, name, allowed[name], value)
    return out


def _quantity(sec: _Section, key: str, pattern: re.Pattern[str], value: Any) -> str:
    """A Kubernetes quantity (100m, 1, 1.5Gi, 512M); integers are accepted and kept as text."""
    text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not pattern.match(text):
        raise sec.fail(key, f"must be a Kubernetes quantity like 100m, 1 or 1.5Gi, got {value!r}")
    return text


def _names(sec: _Section, key: str) -> tuple[str, ...]:
    """A list of object names (DNS subdomains), e.g. Secret names."""
    value = sec.raw(key, [])
    if not isinstance(value, list) or not all(
            isinstance(v, str) and DNS_SUBDOMAIN.match(v) and len(v) <= 253 for v in value):
        raise sec.fail(key, f"must be a list of object names, got {value!r}")
    return tuple(value)


def _cidrs(sec: _Section, key: str) -> tuple[str, ...]:
    """A list of CIDR ranges with their host bits zero (10.244.0.0/16, fd00::/56)."""
    value = sec.raw(key, [])
    if not isinstance(value, list):
        raise sec.fail(key, f"must be a list of CIDR ranges, got {value!r}")
    for item in value:
        try:
            ipaddress.ip_network(item, strict=True)
        except (TypeError, ValueError):
            raise sec.fail(key, f"must be a list of CIDR ranges such as 10.244.0.0/16 with "
                                f"their host bits zero, got {item!r}") from None
    return tuple(str(ipaddress.ip_network(item)) for item in value)


def _labels(sec: _Section, key: str, default: Mapping[str, str]) -> dict[str, str]:
    value = sec.raw(key, dict(default))
    if not isinstance(value, dict) or not value or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise sec.fail(key, f"must be a mapping of label names to values, got {value!r}")
    return dict(value)


def _egress(sec: _Section) -> Egress:
    default = Egress()
    egress = Egress(
        dns_namespace=sec.text("dnsNamespace", DNS_LABEL, default=default.dns_namespace,
                               what="a namespace name", max_length=63),
        dns_pod_labels=_labels(sec, "dnsPodLabels", default.dns_pod_labels),
        agent_denied_cidrs=_cidrs(sec, "agentDeniedCIDRs"),
        api_server_cidrs=_cidrs(sec, "apiServerCIDRs"),
    )
    sec.done()
    return egress


def _idle(sec: _Section) -> int | None:
    """stages.<stage>.idle: a duration between 10s and 720h, or never (the default)."""
    if sec.raw("idle", "never") == "never":
        return None
    seconds = sec.duration("idle")
    if not IDLE_MIN <= seconds <= IDLE_MAX:
        raise sec.fail("idle", "must be between 10s and 720h, or never")
    return seconds


def _stage(root: _Section, name: str) -> StageConfig:
    sec = root.section("stages").section(name)
    stage = StageConfig(
        namespace=sec.text("namespace", max_length=63),
        base_domain=sec.text("baseDomain", DNS_NAME, what="a DNS name like dev.example.com"),
        host=sec.text("host", default="{baseDomain}"),
        idle=_idle(sec),
    )
    sec.done()
    for placeholder in re.findall(r"{([^}]*)}", stage.namespace + stage.host):
        if placeholder not in ("project", "slot", "baseDomain"):
            raise sec.fail("namespace", f"unknown placeholder {{{placeholder}}}")
    if name == "ai" and "{slot}" not in stage.namespace:
        raise sec.fail("namespace", "the ai stage's pattern must contain {slot}")
    if name == "ai" and "{slot}" not in stage.host:
        raise sec.fail("host", "the ai stage's host pattern must contain {slot}")
    return stage


def parse_config(document: Any) -> ProjectConfig:
    """Validate a loaded services.yaml document."""
    root = _Section(document, "")
    project = root.text("project", DNS_LABEL, what="a DNS label (a-z, 0-9, -)", max_length=30)
    stages_sec = root.section("stages")
    stages = {name: _stage(root, name) for name in STAGES}
    for name in stages_sec.data:
        stages_sec.seen.add(name)
        if name not in STAGES:
            raise stages_sec.fail(name, f"unknown stage (stages are {', '.join(STAGES)})")

    img = root.section("images")
    images = Images(**{k: img.text(k, IMAGE, what="an image reference", max_length=512)
                       for k in ("chat", "postgres", "redis", "jaeger")})
    img.done()

    sl = root.section("slots")
    slots = SlotsConfig(
        max_slots=sl.integer("maxSlots", 1, 999),
        default_ttl=sl.duration("defaultTTL", "24h"),
        max_ttl=sl.duration("maxTTL", "168h"),
        expiry_warning=sl.duration("expiryWarning", "15m"),
        data=sl.text("data", default="empty"),
        agent_secrets=_names(sl, "agentSecrets"),
    )
    if slots.data not in DATA_MODES:
        raise sl.fail("data", f"must be one of {', '.join(DATA_MODES)}, got {slots.data!r}")
    sl.done()
    if slots.default_ttl > slots.max_ttl:
        raise ConfigError("services.yaml: slots.defaultTTL: must not exceed slots.maxTTL")

    d = root.section("defaults", required=False)
    tls_sec = d.section("tls", required=False)
    tls = TLSConfig(
        mode=tls_sec.text("mode", default="off"),
        cluster_issuer=tls_sec.text("clusterIssuer", default=None),
        secret_name=tls_sec.text("secretName", default=None),
    )
    tls_sec.done()
    if tls.mode not in TLS_MODES:
        raise tls_sec.fail("mode", f"must be one of {', '.join(TLS_MODES)}, got {tls.mode!r}")
    if tls.mode == "clusterIssuer" and not tls.cluster_issuer:
        raise tls_sec.fail("clusterIssuer", "is required when mode is clusterIssuer")
    if tls.mode == "secret" and not tls.secret_name:
        raise tls_sec.fail("secretName", "is required when mode is secret")

    ing = d.section("ingress", required=False)
    ingress_class = ing.text("className", default=None)
    controller_ns = ing.text("controllerNamespace", DNS_LABEL, default="ingress-nginx",
                            what="a namespace name", max_length=63)
    ingress_port = ing.raw("port", None)
    if ingress_port is not None:
        ingress_port = ing.integer("port", 1, 65535)
    trusted_proxies = _cidrs(ing, "trustedProxyCIDRs")
    ing.done()

    chat = d.section("chat", required=False)
    chat_replicas = chat.integer("replicas", 0, 20, default=2)
    chat_resources = _resources(chat, "resources")
    chat.done()

    pg = d.section("postgres", required=False)
    pg_storage = pg.section("storage", required=False)
    storage_size = _quantity(pg_storage, "size", STORAGE, pg_storage.raw("size", "1Gi"))
    storage_class = pg_storage.text("storageClassName", default=None)
    pg_storage.done()
    pg_resources = _resources(pg, "resources")
    pg.done()

    rd = d.section("redis", required=False)
    redis_resources = _resources(rd, "resources")
    rd_storage = rd.section("storage", required=False)
    redis_storage_size = _quantity(rd_storage, "size", STORAGE, rd_storage.raw("size", "1Gi"))
    rd_storage.done()
    rd.done()

    jg = d.section("jaeger", required=False)
    jaeger_enabled = jg.boolean("enabled", default=True)
    jaeger_max_traces = jg.integer("maxTraces", 1000, 1_000_000, default=50000)
    jaeger_public_ui = jg.boolean("publicUI", default=False)
    jaeger_resources = _resources(jg, "resources")
    jg.done()

    mt = d.section("metrics", required=False)
    metrics_namespace = mt.text("namespace", DNS_LABEL, default=None, what="a namespace name",
                                max_length=63)
    mt.done()
    egress = _egress(d.section("egress", required=False))

    quota = _quantities(d, "quota", QUOTA_KEYS)
    lr = d.section("limitRange", required=False)
    limit_keys = {"cpu": CPU, "memory": MEMORY}
    limit_default_request = _quantities(lr, "defaultRequest", limit_keys)
    limit_default = _quantities(lr, "default", limit_keys)
    lr.done()
    d.done()
    root.done()

    return ProjectConfig(
        project=project,
        stages=stages,
        images=images,
        slots=slots,
        defaults=Defaults(
            tls=tls, ingress_class=ingress_class, ingress_controller_namespace=controller_ns,
            ingress_port=ingress_port,
            chat_replicas=chat_replicas, chat_resources=chat_resources,
            postgres_storage_size=storage_size, postgres_storage_class=storage_class,
            postgres_resources=pg_resources, redis_resources=redis_resources,
            jaeger_enabled=jaeger_enabled, jaeger_max_traces=jaeger_max_traces,
            jaeger_resources=jaeger_resources, quota=quota,
            limit_default_request=limit_default_request, limit_default=limit_default,
            trusted_proxies=trusted_proxies, metrics_namespace=metrics_namespace,
            jaeger_public_ui=jaeger_public_ui, redis_storage_size=redis_storage_size,
            egress=egress,
        ),
    )


def load_config(path: Path) -> ProjectConfig:
    """Read and validate services.yaml; every failure is a ConfigError with the reason."""
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"services.yaml: cannot read {path}: {e.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"services.yaml: {path} is not valid YAML: {e}") from None
    return parse_config(document)
