"""The operator process's own settings, from CHATENV_* environment variables.

Loaded once at start-up; a bad value stops the process with a message that
names the variable. The project configuration (services.yaml) is separate:
see ``config``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class SettingsError(Exception):
    """An environment variable has an invalid value; the message names it."""


@dataclass(frozen=True)
class Settings:
    config_path: Path
    """CHATENV_CONFIG: path of services.yaml (default: /etc/chatenv/services.yaml, or
    ./services.yaml when that does not exist)."""
    namespace: str | None
    """CHATENV_NAMESPACE: the operator's own namespace; environments may never use it."""
    workers: int
    """CHATENV_WORKERS: at most this many reconciles at once per resource kind (default 16);
    workers start as names wait and stop when none do, so their number follows the load."""
    concurrent_requests: int
    """CHATENV_CONCURRENT_REQUESTS: API requests of passes in flight at once, at most
    (default 16): a pass sends the ones that do not depend on each other together."""
    resync_seconds: float
    """CHATENV_RESYNC_SECONDS: every object is reconciled at least this often (default 300),
    as a safety net behind the watches."""
    health_port: int
    """CHATENV_HEALTH_PORT: kopf's liveness endpoint /healthz (default 8080)."""
    metrics_port: int
    """CHATENV_METRICS_PORT: Prometheus metrics at /metrics (default 8081; 0 = off)."""
    log_format: str
    """CHATENV_LOG_FORMAT: json (default) or text."""
    log_level: str
    """CHATENV_LOG_LEVEL: DEBUG, INFO (default), WARNING or ERROR."""
    sweep_seconds: float
    """CHATENV_SWEEP_SECONDS: how often the orphan sweep runs (default 60)."""
    orphan_grace_seconds: float
    """CHATENV_ORPHAN_GRACE_SECONDS: an ownerless object younger than this is left alone by
    the sweep (default 30), so it never races the creation of an owner."""
    lease_seconds: int = 8
    """CHATENV_LEASE_SECONDS: leader election among the operator's replicas (a Lease in its
    namespace): a leader that stops renewing is replaced after this long plus a retry
    (default 8: a takeover within about 11 s; 0 turns election off: run one replica then).
    The leader renews every sixth of it and stops when it could not for 70 % of it. Needs
    CHATENV_NAMESPACE."""


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
    return value


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    default_config = Path("/etc/chatenv/services.yaml")
    if not default_config.exists():
        default_config = Path("services.yaml")
    log_format = env.get("CHATENV_LOG_FORMAT", "json")
    if log_format not in ("json", "text"):
        raise SettingsError(f"CHATENV_LOG_FORMAT must be json or text, got {log_format!r}")
    log_level = env.get("CHATENV_LOG_LEVEL", "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise SettingsError(f"CHATENV_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, "
                            f"got {log_level!r}")
    return Settings(
        config_path=Path(env.get("CHATENV_CONFIG") or default_config),
        namespace=env.get("CHATENV_NAMESPACE") or None,
        workers=_int(env, "CHATENV_WORKERS", 16, 1, 64),
        concurrent_requests=_int(env, "CHATENV_CONCURRENT_REQUESTS", 16, 1, 64),
        resync_seconds=_int(env, "CHATENV_RESYNC_SECONDS", 300, 5, 86400),
        health_port=_int(env, "CHATENV_HEALTH_PORT", 8080, 1, 65535),
        metrics_port=_int(env, "CHATENV_METRICS_PORT", 8081, 0, 65535),
        log_format=log_format,
        log_level=log_level,
        sweep_seconds=_int(env, "CHATENV_SWEEP_SECONDS", 60, 1, 86400),
        orphan_grace_seconds=_int(env, "CHATENV_ORPHAN_GRACE_SECONDS", 30, 0, 86400),
        lease_seconds=_lease(env),
    )


def _lease(env: Mapping[str, str]) -> int:
    seconds = _int(env, "CHATENV_LEASE_SECONDS", 8, 0, 300)
    if 0 < seconds < 3:
        raise SettingsError(f"CHATENV_LEASE_SECONDS must be 0 (no election) or at least 3, "
                            f"got {seconds}")
    return seconds
