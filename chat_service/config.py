"""Settings of the chat service, read once from environment variables.

Pure: `Config.from_env(mapping)` parses a mapping (with the parsers of
`chat_service.envparse`) and raises `ConfigError` naming the variable at fault;
no I/O happens here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from chat_service.envparse import (
    ConfigError,
    Network,
    Reader,
    boolean,
    int_range,
    log_level,
    networks,
    nonempty,
    seconds,
    url,
)

__all__ = ["DEFAULT_WEB_DIST", "Config", "ConfigError"]

DEFAULT_WEB_DIST = Path(__file__).resolve().parent / "web" / "dist"
_DAY = 86400


@dataclass(frozen=True, kw_only=True)
class Config:
    """Everything the service reads from its environment (variable names in each docstring)."""

    http_host: str = "0.0.0.0"  # noqa: S104  # a container must listen on all interfaces
    """HTTP_HOST: address to listen on (the API and, on its own port, the metrics).
    Default all interfaces, as a Pod needs."""
    http_port: int = 8080
    """HTTP_PORT: TCP port of the HTTP server, 1-65535. Default 8080 (the original's)."""
    http_workers: int | None = None
    """HTTP_WORKERS: server processes sharing the port, 1-64 (`serve --workers` overrides).
    Default: as many as the CPUs this process may use (its cgroup's CPU limit, rounded
    up, and its CPU affinity), since one process uses at most one CPU."""
    metrics_port: int = 9090
    """METRICS_PORT: TCP port serving only `/metrics`, apart from the API so that an
    Ingress routing the API's port never exposes it. 0 turns it off. Default 9090."""
    activity_port: int = 9091
    """ACTIVITY_PORT: TCP port serving only `GET /activity` (when a person last made a
    request, for the operator's idle check), apart from the API so that the Ingress never
    routes it. 0 turns it off. Default 9091."""
    activity_record_seconds: float = 30.0
    """ACTIVITY_RECORD_SECONDS: how often each process writes the time of its latest
    request to PostgreSQL (at most), so every replica can tell the operator when the
    environment was last used. 1-3600; default 30 s."""
    http_header_timeout: float = 10.0
    """HTTP_HEADER_TIMEOUT_SECONDS: a request's line and headers must arrive within this
    many seconds of their first byte, or the connection is closed (slow clients must not
    hold connections open). Default 10 s."""
    http_body_timeout: float = 10.0
    """HTTP_BODY_TIMEOUT_SECONDS: a request body must arrive within this many seconds,
    else 408. Default 10 s."""
    http_keepalive: float = 120.0
    """HTTP_KEEPALIVE_SECONDS: an idle keep-alive connection is closed after this long.
    Keep it above the ingress' idle timeout for upstream connections (Traefik 90 s, nginx
    60 s), or the proxy may reuse a connection the service is closing. Default 120 s."""

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
    and as the server's statement_timeout; a statement over it is a 503. Default 3 s."""
    postgres_startup_timeout: float = 120.0
    """POSTGRES_STARTUP_TIMEOUT_SECONDS: how long `serve`, `migrate` and the admin tool
    wait for PostgreSQL at start before exiting non-zero (Kubernetes then restarts them).
    Default 120 s: an environment's migrations start beside its database."""
    migration_lock_timeout: float = 300.0
    """MIGRATION_LOCK_TIMEOUT_SECONDS: how long `migrate` waits for another migrator to
    finish (the migration lock) before it exits with code 5. Migrations themselves run
    without a statement timeout. Default 300 s."""

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

    session_ttl: int = _DAY
    """SESSION_TTL_SECONDS: idle lifetime of a session token, renewed on every use.
    Default 86400 (24 h)."""
    session_max_lifetime: int = 30 * _DAY
    """SESSION_MAX_LIFETIME_SECONDS: a session ends this long after login however often
    it is used. Default 2592000 (30 days)."""
    session_max_per_user: int = 10
    """SESSION_MAX_PER_USER: sessions one user may hold; a new login ends the oldest
    beyond it. Default 10."""
    login_limit_per_nickname: int = 10
    """LOGIN_RATE_LIMIT_PER_NICKNAME: failed logins on one nickname (from all addresses)
    per window beyond which every address waits after its first failure on it (the
    right password from an address that has not failed still logs in). Default 10."""
    login_limit_per_address: int = 50
    """LOGIN_RATE_LIMIT_PER_ADDRESS: login attempts allowed per client address per window.
    Default 50."""
    login_failures_free: int = 5
    """LOGIN_FAILURES_BEFORE_DELAY: failed logins one address may make on one nickname
    before each further failure makes it wait (1 s, 2 s, 4 s, ...). Default 5."""
    login_delay_max: int = 300
    """LOGIN_DELAY_MAX_SECONDS: the longest such wait. Default 300 s."""
    login_rate_window: int = 60
    """LOGIN_RATE_WINDOW_SECONDS: length of the rate-limit windows (login and registration);
    failures are remembered this long, or as long as the address waits, whichever is
    longer. Default 60 s."""
    register_limit_per_address: int = 30
    """REGISTER_RATE_LIMIT_PER_ADDRESS: registrations allowed per client address per window;
    each costs an argon2id hash, so this bounds what one client can make the server spend.
    Default 30."""
    post_limit_per_user: int = 30
    """POST_RATE_LIMIT_PER_USER: messages one user may post per POST_RATE_WINDOW_SECONDS.
    Default 30."""
    post_rate_window: int = 30
    """POST_RATE_WINDOW_SECONDS: the posting window. Default 30 s."""
    user_storage_max_bytes: int = 10 * 2**20
    """USER_STORAGE_MAX_BYTES: most bytes of message text (UTF-8) one user may have
    stored, deleted messages included (they stay on disk); beyond it posts get 403.
    Default 10 MiB."""
    trusted_proxies: tuple[Network, ...] = ()
    """TRUSTED_PROXY_CIDRS: comma-separated address ranges of the reverse proxies in
    front of the service (the ingress controller's pods), e.g. `10.42.0.0/16,fd00::/8`.
    Only a request whose TCP peer is in one of them has its client address taken from
    X-Forwarded-For (the rightmost entry not itself a trusted proxy). Default none: the
    peer address, whatever the headers say."""

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
    sse_max_streams: int = 2000
    """SSE_MAX_STREAMS: event streams one process serves at once; more get 503 with
    Retry-After. Default 2000."""
    sse_max_streams_per_address: int = 20
    """SSE_MAX_STREAMS_PER_ADDRESS: event streams one client address may hold open on one
    process; more get 429 with Retry-After. Default 20."""
    sse_replay_connections: int = 2
    """SSE_REPLAY_CONNECTIONS: pooled PostgreSQL connections that resuming streams may use
    at once (capped at POSTGRES_POOL_MAX - 1), so replays never starve requests of
    connections. Default 2."""
    sse_replay_max_bytes: int = 2**20
    """SSE_REPLAY_MAX_BYTES: most bytes of missed messages one resuming stream replays
    (beside the 1000-message cap); a client further behind gets `resync`. Default 1 MiB."""
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

    @property
    def replay_connections(self) -> int:
        """SSE_REPLAY_CONNECTIONS as applied: at least one connection is left to requests."""
        return max(1, min(self.sse_replay_connections, self.postgres_pool_max - 1))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        """Parse the variables in `env`; unset or empty ones take their defaults."""
        r = Reader(env)
        d = cls()
        if r.get("TRUST_X_FORWARDED_FOR", boolean, False):
            raise ConfigError(
                "TRUST_X_FORWARDED_FOR is no longer read: it let anyone who reaches the pod "
                "choose their address. Set TRUSTED_PROXY_CIDRS to the ingress controller's "
                "address range instead")
        dist = r.get("WEB_DIST_DIR", str, None)
        metrics = r.get("PROMETHEUS_MULTIPROC_DIR", str, None)
        port = int_range(1, 65535)
        count = int_range(1, 10**9)
        return cls(
            http_host=r.get("HTTP_HOST", nonempty, d.http_host),
            http_port=r.get("HTTP_PORT", port, d.http_port),
            http_workers=r.get("HTTP_WORKERS", int_range(1, 64), d.http_workers),
            metrics_port=r.get("METRICS_PORT", int_range(0, 65535), d.metrics_port),
            activity_port=r.get("ACTIVITY_PORT", int_range(0, 65535), d.activity_port),
            activity_record_seconds=r.get("ACTIVITY_RECORD_SECONDS", seconds(1, 3600),
                                          d.activity_record_seconds),
            http_header_timeout=r.get("HTTP_HEADER_TIMEOUT_SECONDS", seconds(0.1, 3600),
                                      d.http_header_timeout),
            http_body_timeout=r.get("HTTP_BODY_TIMEOUT_SECONDS", seconds(0.1, 3600),
                                    d.http_body_timeout),
            http_keepalive=r.get("HTTP_KEEPALIVE_SECONDS", seconds(1, 86400), d.http_keepalive),
            postgres_host=r.get("POSTGRES_HOST", nonempty, d.postgres_host),
            postgres_port=r.get("POSTGRES_PORT", port, d.postgres_port),
            postgres_db=r.get("POSTGRES_DB", nonempty, d.postgres_db),
            postgres_user=r.get("POSTGRES_USER", nonempty, d.postgres_user),
            postgres_password=r.get("POSTGRES_PASSWORD", str, d.postgres_password),
            postgres_pool_min=r.get("POSTGRES_POOL_MIN", int_range(0, 1000),
                                    d.postgres_pool_min),
            postgres_pool_max=r.get("POSTGRES_POOL_MAX", int_range(1, 1000),
                                    d.postgres_pool_max),
            postgres_pool_wait=r.get("POSTGRES_POOL_WAIT_SECONDS", seconds(0.1, 600),
                                     d.postgres_pool_wait),
            postgres_connect_timeout=r.get("POSTGRES_CONNECT_TIMEOUT_SECONDS",
                                           seconds(0.1, 60), d.postgres_connect_timeout),
            postgres_query_timeout=r.get("POSTGRES_QUERY_TIMEOUT_SECONDS",
                                         seconds(0.1, 600), d.postgres_query_timeout),
            postgres_startup_timeout=r.get("POSTGRES_STARTUP_TIMEOUT_SECONDS",
                                           seconds(0, 3600), d.postgres_startup_timeout),
            migration_lock_timeout=r.get("MIGRATION_LOCK_TIMEOUT_SECONDS", seconds(0.1, _DAY),
                                         d.migration_lock_timeout),
            redis_host=r.get("REDIS_HOST", nonempty, d.redis_host),
            redis_port=r.get("REDIS_PORT", port, d.redis_port),
            redis_password=r.get("REDIS_PASSWORD", str, d.redis_password),
            redis_db=r.get("REDIS_DB", int_range(0, 15), d.redis_db),
            redis_timeout=r.get("REDIS_TIMEOUT_SECONDS", seconds(0.1, 60), d.redis_timeout),
            events_channel=r.get("REDIS_EVENTS_CHANNEL", nonempty, d.events_channel),
            otel_endpoint=r.get("OTEL_EXPORTER_OTLP_ENDPOINT", url, None),
            otel_service_name=r.get("OTEL_SERVICE_NAME", nonempty, d.otel_service_name),
            log_level=r.get("LOG_LEVEL", log_level, d.log_level),
            session_ttl=r.get("SESSION_TTL_SECONDS", int_range(1, 365 * _DAY), d.session_ttl),
            session_max_lifetime=r.get("SESSION_MAX_LIFETIME_SECONDS",
                                       int_range(1, 10 * 365 * _DAY), d.session_max_lifetime),
            session_max_per_user=r.get("SESSION_MAX_PER_USER", int_range(1, 1000),
                                       d.session_max_per_user),
            login_limit_per_nickname=r.get("LOGIN_RATE_LIMIT_PER_NICKNAME", count,
                                           d.login_limit_per_nickname),
            login_limit_per_address=r.get("LOGIN_RATE_LIMIT_PER_ADDRESS", count,
                                          d.login_limit_per_address),
            login_failures_free=r.get("LOGIN_FAILURES_BEFORE_DELAY", int_range(0, 1000),
                                      d.login_failures_free),
            login_delay_max=r.get("LOGIN_DELAY_MAX_SECONDS", int_range(1, _DAY),
                                  d.login_delay_max),
            login_rate_window=r.get("LOGIN_RATE_WINDOW_SECONDS", int_range(1, _DAY),
                                    d.login_rate_window),
            register_limit_per_address=r.get("REGISTER_RATE_LIMIT_PER_ADDRESS", count,
                                             d.register_limit_per_address),
            post_limit_per_user=r.get("POST_RATE_LIMIT_PER_USER", count,
                                      d.post_limit_per_user),
            post_rate_window=r.get("POST_RATE_WINDOW_SECONDS", int_range(1, _DAY),
                                   d.post_rate_window),
            user_storage_max_bytes=r.get("USER_STORAGE_MAX_BYTES", int_range(1, 2**62),
                                         d.user_storage_max_bytes),
            trusted_proxies=r.get("TRUSTED_PROXY_CIDRS", networks, d.trusted_proxies),
            message_cache_seconds=r.get("MESSAGE_CACHE_SECONDS", seconds(0, 3600),
                                        d.message_cache_seconds),
            max_body_bytes=r.get("MAX_BODY_BYTES", int_range(1024, 16 * 2**20),
                                 d.max_body_bytes),
            sse_heartbeat=r.get("SSE_HEARTBEAT_SECONDS", seconds(0.1, 3600), d.sse_heartbeat),
            sse_max_streams=r.get("SSE_MAX_STREAMS", int_range(1, 10**6), d.sse_max_streams),
            sse_max_streams_per_address=r.get("SSE_MAX_STREAMS_PER_ADDRESS",
                                              int_range(1, 10**6),
                                              d.sse_max_streams_per_address),
            sse_replay_connections=r.get("SSE_REPLAY_CONNECTIONS", int_range(1, 1000),
                                         d.sse_replay_connections),
            sse_replay_max_bytes=r.get("SSE_REPLAY_MAX_BYTES", int_range(65536, 2**30),
                                       d.sse_replay_max_bytes),
            shutdown_timeout=r.get("SHUTDOWN_TIMEOUT_SECONDS", seconds(0, 3600),
                                   d.shutdown_timeout),
            argon2_time_cost=r.get("ARGON2_TIME_COST", int_range(1, 100), d.argon2_time_cost),
            argon2_memory_kib=r.get("ARGON2_MEMORY_KIB", int_range(1024, 4 * 2**20),
                                    d.argon2_memory_kib),
            argon2_parallelism=r.get("ARGON2_PARALLELISM", int_range(1, 64),
                                     d.argon2_parallelism),
            password_hash_workers=r.get("PASSWORD_HASH_WORKERS", int_range(1, 64),
                                        d.password_hash_workers),
            metrics_dir=Path(metrics) if metrics else None,
            web_dist_dir=Path(dist) if dist else d.web_dist_dir,
        )._checked()

    def _checked(self) -> Config:
        if self.postgres_pool_min > self.postgres_pool_max:
            raise ConfigError(
                f"POSTGRES_POOL_MIN ({self.postgres_pool_min}) must not exceed "
                f"POSTGRES_POOL_MAX ({self.postgres_pool_max})")
        if self.metrics_port == self.http_port:
            raise ConfigError(
                f"METRICS_PORT ({self.metrics_port}) must differ from HTTP_PORT: the metrics "
                "are kept off the API's port (0 turns them off)")
        if self.activity_port and self.activity_port in (self.http_port, self.metrics_port):
            raise ConfigError(
                f"ACTIVITY_PORT ({self.activity_port}) must differ from HTTP_PORT and "
                "METRICS_PORT: it is kept off the API's port (0 turns it off)")
        return self
