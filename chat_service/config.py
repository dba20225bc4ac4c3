"""Settings of the chat service, read once from environment variables.

Pure: `Config.from_env(mapping)` parses a mapping and raises `ConfigError` naming
the variable at fault; no I/O happens here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

_T = TypeVar("_T")

DEFAULT_WEB_DIST = Path(__file__).resolve().parent / "web" / "dist"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConfigError(Exception):
    """An environment variable has a value the service cannot use."""


@dataclass(frozen=True, kw_only=True)
class Config:
    """Everything the service reads from its environment (variable names in each docstring)."""

    http_host: str = "0.0.0.0"  # noqa: S104  # a container must listen on all interfaces
    """HTTP_HOST: address to listen on. Default all interfaces, as a Pod needs."""
    http_port: int = 8080
    """HTTP_PORT: TCP port of the HTTP server, 1-65535. Default 8080 (the original's)."""
    http_workers: int | None = None
    """HTTP_WORKERS: server processes sharing the port, 1-64 (`serve --workers` overrides).
    Default: as many as the CPUs this process may use (its cgroup's CPU limit, rounded
    up, and its CPU affinity), since one process uses at most one CPU."""

    postgres_host: str = "postgres"
    """POSTGRES_HOST: PostgreSQL host name. Default `postgres` (the in-cluster Service)."""
    postgres_port: int = 5432
    """POSTGRES_PORT: PostgreSQL port. Default 5432."""
    postgres_db: str = "chat"
    """POSTGRES_DB: database name. Default `chat`."""
    postgres_user: str = "chat"
    """POSTGRES_USER: database role. Default `chat`."""
    postgres_password: str = field(default="chat", repr=False)
    """POSTGRES_PASSWORD: password of that role. Default `chat`. Never logged."""
    postgres_pool_min: int = 1
    """POSTGRES_POOL_MIN: connections kept open. Default 1."""
    postgres_pool_max: int = 10
    """POSTGRES_POOL_MAX: most connections per process. Default 10; keep replicas x this
    below the server's max_connections."""
    postgres_pool_wait: float = 10.0
    """POSTGRES_POOL_WAIT_SECONDS: how long a request waits for a free pooled connection
    before it gets a 503, so a burst queues instead of failing. Default 10 s."""
    postgres_connect_timeout: float = 2.0
    """POSTGRES_CONNECT_TIMEOUT_SECONDS: limit for opening (or waiting for) a connection.
    Default 2 s, so an unreachable database turns into a 503 quickly."""
    postgres_query_timeout: float = 3.0
    """POSTGRES_QUERY_TIMEOUT_SECONDS: limit for one statement, enforced both by the client
    and as the server's statement_timeout. Default 3 s."""
    postgres_startup_timeout: float = 30.0
    """POSTGRES_STARTUP_TIMEOUT_SECONDS: how long `serve` waits for PostgreSQL at start
    before exiting non-zero (Kubernetes then restarts it). Default 30 s."""

    redis_host: str = "redis"
    """REDIS_HOST: Redis host name. Default `redis`."""
    redis_port: int = 6379
    """REDIS_PORT: Redis port. Default 6379."""
    redis_password: str = field(default="", repr=False)
    """REDIS_PASSWORD: Redis password; empty for none. Never logged."""
    redis_db: int = 0
    """REDIS_DB: Redis database number, 0-15. Default 0."""
    redis_timeout: float = 1.0
    """REDIS_TIMEOUT_SECONDS: connect and per-command socket timeout. Default 1 s."""
    events_channel: str = "chat:events"
    """REDIS_EVENTS_CHANNEL: pub/sub channel for live updates. Default `chat:events`."""

    otel_endpoint: str | None = None
    """OTEL_EXPORTER_OTLP_ENDPOINT: OTLP/HTTP base URL (spans go to `<it>/v1/traces`).
    Unset or empty: spans are made (trace ids still appear in logs) but not exported."""
    otel_service_name: str = "chat-service"
    """OTEL_SERVICE_NAME: `service.name` of the exported spans. Default `chat-service`."""
    log_level: str = "INFO"
    """LOG_LEVEL: DEBUG, INFO, WARNING or ERROR. Default INFO."""

    session_ttl: int = 86400
    """SESSION_TTL_SECONDS: idle lifetime of a session token, renewed on every use.
    Default 86400 (24 h)."""
    login_limit_per_nickname: int = 10
    """LOGIN_RATE_LIMIT_PER_NICKNAME: login attempts allowed per nickname per window.
    Default 10."""
    login_limit_per_address: int = 50
    """LOGIN_RATE_LIMIT_PER_ADDRESS: login attempts allowed per client address per window.
    Default 50."""
    login_rate_window: int = 60
    """LOGIN_RATE_WINDOW_SECONDS: length of the rate-limit windows (login and registration).
    Default 60 s."""
    register_limit_per_address: int = 30
    """REGISTER_RATE_LIMIT_PER_ADDRESS: registrations allowed per client address per window;
    each costs an argon2id hash, so this bounds what one client can make the server spend.
    Default 30."""
    trust_forwarded_for: bool = False
    """TRUST_X_FORWARDED_FOR: take the client address from the last X-Forwarded-For entry
    (set it behind an ingress that appends it). Default false: the peer address."""

    message_cache_seconds: float = 1.0
    """MESSAGE_CACHE_SECONDS: the newest messages are answered from memory, kept current
    by live-update events and checked against PostgreSQL when older than this; so a
    change made behind the service's back (or an event lost) shows within it. 0 turns
    the memory off (every listing queries PostgreSQL). Default 1 s."""

    max_body_bytes: int = 65536
    """MAX_BODY_BYTES: largest accepted request body; bigger ones get 413. Default 64 KiB."""
    sse_heartbeat: float = 15.0
    """SSE_HEARTBEAT_SECONDS: interval of comment lines on idle event streams, so proxies
    keep them open. Default 15 s."""
    shutdown_timeout: float = 10.0
    """SHUTDOWN_TIMEOUT_SECONDS: how long SIGTERM waits for in-flight requests. Default 10 s;
    keep it below the Pod's terminationGracePeriodSeconds."""

    argon2_time_cost: int = 3
    """ARGON2_TIME_COST: argon2id iterations. Default 3 (RFC 9106's second recommendation)."""
    argon2_memory_kib: int = 65536
    """ARGON2_MEMORY_KIB: argon2id memory per hash in KiB. Default 65536 (64 MiB)."""
    argon2_parallelism: int = 4
    """ARGON2_PARALLELISM: argon2id lanes. Default 4."""
    password_hash_workers: int = 2
    """PASSWORD_HASH_WORKERS: threads hashing passwords; bounds CPU and memory
    (workers x ARGON2_MEMORY_KIB). Default 2."""

    metrics_dir: Path | None = None
    """PROMETHEUS_MULTIPROC_DIR: where worker processes keep their metrics so any worker
    can report them all. Set by `serve` for its workers; leave it unset."""

    web_dist_dir: Path = DEFAULT_WEB_DIST
    """WEB_DIST_DIR: the built web UI (index.html + assets), served at `/`.
    Default the package's `web/dist`. When missing, `/` says the UI is not built."""

    @property
    def postgres_dsn(self) -> str:
        """libpq connection string; statement_timeout is set server-side as well."""
        # libpq parses this string itself; quote values so spaces or quotes stay literal.
        def q(value: object) -> str:
            text = str(value).replace("\\", "\\\\").replace("'", "\\'")
            return f"'{text}'"

        statement_ms = int(self.postgres_query_timeout * 1000)
        return " ".join([
            f"host={q(self.postgres_host)}", f"port={self.postgres_port}",
            f"dbname={q(self.postgres_db)}", f"user={q(self.postgres_user)}",
            f"password={q(self.postgres_password)}",
            f"connect_timeout={max(1, int(self.postgres_connect_timeout + 0.999))}",
            f"options='-c statement_timeout={statement_ms}'",
            "keepalives=1 keepalives_idle=10 keepalives_interval=5 keepalives_count=3",
            "application_name=chat-service",
        ])

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        """Parse the variables in `env`; unset or empty ones take their defaults."""
        r = _Reader(env)
        d = cls()
        dist = r.get("WEB_DIST_DIR", str, None)
        metrics = r.get("PROMETHEUS_MULTIPROC_DIR", str, None)
        return cls(
            http_host=r.get("HTTP_HOST", _nonempty, d.http_host),
            http_port=r.get("HTTP_PORT", _int_range(1, 65535), d.http_port),
            http_workers=r.get("HTTP_WORKERS", _int_range(1, 64), d.http_workers),
            postgres_host=r.get("POSTGRES_HOST", _nonempty, d.postgres_host),
            postgres_port=r.get("POSTGRES_PORT", _int_range(1, 65535), d.postgres_port),
            postgres_db=r.get("POSTGRES_DB", _nonempty, d.postgres_db),
            postgres_user=r.get("POSTGRES_USER", _nonempty, d.postgres_user),
            postgres_password=r.get("POSTGRES_PASSWORD", str, d.postgres_password),
            postgres_pool_min=r.get("POSTGRES_POOL_MIN", _int_range(0, 1000),
                                    d.postgres_pool_min),
            postgres_pool_max=r.get("POSTGRES_POOL_MAX", _int_range(1, 1000),
                                    d.postgres_pool_max),
            postgres_pool_wait=r.get("POSTGRES_POOL_WAIT_SECONDS", _seconds(0.1, 600),
                                     d.postgres_pool_wait),
            postgres_connect_timeout=r.get("POSTGRES_CONNECT_TIMEOUT_SECONDS",
                                           _seconds(0.1, 60), d.postgres_connect_timeout),
            postgres_query_timeout=r.get("POSTGRES_QUERY_TIMEOUT_SECONDS",
                                         _seconds(0.1, 600), d.postgres_query_timeout),
            postgres_startup_timeout=r.get("POSTGRES_STARTUP_TIMEOUT_SECONDS",
                                           _seconds(0, 3600), d.postgres_startup_timeout),
            redis_host=r.get("REDIS_HOST", _nonempty, d.redis_host),
            redis_port=r.get("REDIS_PORT", _int_range(1, 65535), d.redis_port),
            redis_password=r.get("REDIS_PASSWORD", str, d.redis_password),
            redis_db=r.get("REDIS_DB", _int_range(0, 15), d.redis_db),
            redis_timeout=r.get("REDIS_TIMEOUT_SECONDS", _seconds(0.1, 60), d.redis_timeout),
            events_channel=r.get("REDIS_EVENTS_CHANNEL", _nonempty, d.events_channel),
            otel_endpoint=r.get("OTEL_EXPORTER_OTLP_ENDPOINT", _url, None),
            otel_service_name=r.get("OTEL_SERVICE_NAME", _nonempty, d.otel_service_name),
            log_level=r.get("LOG_LEVEL", _log_level, d.log_level),
            session_ttl=r.get("SESSION_TTL_SECONDS", _int_range(1, 365 * 86400), d.session_ttl),
            login_limit_per_nickname=r.get("LOGIN_RATE_LIMIT_PER_NICKNAME",
                                           _int_range(1, 10**9), d.login_limit_per_nickname),
            login_limit_per_address=r.get("LOGIN_RATE_LIMIT_PER_ADDRESS",
                                          _int_range(1, 10**9), d.login_limit_per_address),
            login_rate_window=r.get("LOGIN_RATE_WINDOW_SECONDS", _int_range(1, 86400),
                                    d.login_rate_window),
            register_limit_per_address=r.get("REGISTER_RATE_LIMIT_PER_ADDRESS",
                                             _int_range(1, 10**9),
                                             d.register_limit_per_address),
            trust_forwarded_for=r.get("TRUST_X_FORWARDED_FOR", _bool, d.trust_forwarded_for),
            message_cache_seconds=r.get("MESSAGE_CACHE_SECONDS", _seconds(0, 3600),
                                        d.message_cache_seconds),
            max_body_bytes=r.get("MAX_BODY_BYTES", _int_range(1024, 16 * 2**20),
                                 d.max_body_bytes),
            sse_heartbeat=r.get("SSE_HEARTBEAT_SECONDS", _seconds(0.1, 3600), d.sse_heartbeat),
            shutdown_timeout=r.get("SHUTDOWN_TIMEOUT_SECONDS", _seconds(0, 3600),
                                   d.shutdown_timeout),
            argon2_time_cost=r.get("ARGON2_TIME_COST", _int_range(1, 100), d.argon2_time_cost),
            argon2_memory_kib=r.get("ARGON2_MEMORY_KIB", _int_range(1024, 4 * 2**20),
                                    d.argon2_memory_kib),
            argon2_parallelism=r.get("ARGON2_PARALLELISM", _int_range(1, 64),
                                     d.argon2_parallelism),
            password_hash_workers=r.get("PASSWORD_HASH_WORKERS", _int_range(1, 64),
                                        d.password_hash_workers),
            metrics_dir=Path(metrics) if metrics else None,
            web_dist_dir=Path(dist) if dist else d.web_dist_dir,
        )._checked()

    def _checked(self) -> Config:
        if self.postgres_pool_min > self.postgres_pool_max:
            raise ConfigError(
                f"POSTGRES_POOL_MIN ({self.postgres_pool_min}) must not exceed "
                f"POSTGRES_POOL_MAX ({self.postgres_pool_max})")
        return self


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def get(self, name: str, parse: Callable[[str], _T], default: _T) -> _T:
        raw = self._env.get(name, "")
        if raw.strip() == "":
            return default
        try:
            return parse(raw.strip())
        except ValueError as e:
            raise ConfigError(f"{name} {e}, got {raw!r}") from None


def _nonempty(raw: str) -> str:
    return raw


def _int_range(lo: int, hi: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw, 10)
        except ValueError:
            value = lo - 1
        if not lo <= value <= hi:
            raise ValueError(f"must be an integer {lo}-{hi}")
        return value
    return parse


def _seconds(lo: float, hi: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not lo <= value <= hi:  # also rejects NaN
            raise ValueError(f"must be a number of seconds {lo:g}-{hi:g}")
        return value
    return parse


def _bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _log_level(raw: str) -> str:
    if raw.upper() not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return raw.upper()


def _url(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return raw.rstrip("/")
