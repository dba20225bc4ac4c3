"""Configuration and credentials: the ConfigMap the chat service reads, the secrets."""

from __future__ import annotations

import hashlib
import json

from ..constants import (
    CHAT_NAME,
    CHAT_PORT,
    CONFIGMAP_NAME,
    DATA_CREDENTIALS_SECRET,
    JAEGER_NAME,
    JAEGER_OTLP_HTTP_PORT,
    METRICS_PORT,
    POSTGRES_CLIENT_NAME,
    POSTGRES_PORT,
    POSTGRES_SECRET,
    REDIS_NAME,
    REDIS_PORT,
    REDIS_SECRET,
    SNAPSHOT_READER_SECRET,
)
from ..environment import Environment
from ..kinds import CONFIGMAP, SECRET
from .common import Manifest, metadata

POSTGRES_USER = "chat"
POSTGRES_DB = "chat"


def config_data(env: Environment) -> dict[str, str]:
    """Variables with the names chat_service reads (and the original stack used)."""
    data = {
        "HOST": env.host,
        "STAGE": env.stage,
        "URL": env.url,
        "HTTP_PORT": str(CHAT_PORT),
        "POSTGRES_HOST": POSTGRES_CLIENT_NAME,
        "POSTGRES_PORT": str(POSTGRES_PORT),
        "POSTGRES_DB": POSTGRES_DB,
        "POSTGRES_USER": POSTGRES_USER,
        "REDIS_HOST": REDIS_NAME,
        "REDIS_PORT": str(REDIS_PORT),
        "REDIS_DB": "0",
        "OTEL_SERVICE_NAME": CHAT_NAME,
        "METRICS_PORT": str(METRICS_PORT),
    }
    if env.trusted_proxies:
        data["TRUSTED_PROXY_CIDRS"] = ",".join(env.trusted_proxies)
    if env.jaeger_enabled:
        data["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://{JAEGER_NAME}:{JAEGER_OTLP_HTTP_PORT}"
    return data


def configmap(env: Environment) -> Manifest:
    return CONFIGMAP.new(metadata(env, CONFIGMAP_NAME, "config"), data=config_data(env))


def config_hash(env: Environment) -> str:
    """Changes when the chat service's configuration changes, to roll its pods."""
    return hashlib.sha256(json.dumps(config_data(env), sort_keys=True).encode()).hexdigest()[:16]


def postgres_secret(env: Environment, password: str) -> Manifest:
    return SECRET.new(metadata(env, POSTGRES_SECRET, "postgres"), type="Opaque",
                      stringData={"username": POSTGRES_USER, "password": password})


def redis_secret(env: Environment, password: str) -> Manifest:
    # The password reaches redis-server through its config file, never its command line.
    return SECRET.new(metadata(env, REDIS_SECRET, "redis"), type="Opaque", stringData={
        "password": password,
        # Persistence and memory are on redis-server's command line (builders.redis).
        "redis.conf": f'requirepass {password}\nsave ""\ndir /data\n',
    })


def data_credentials_secret(env: Environment, password: str) -> Manifest:
    """The placeholder password of every user of the starting data (`chatenv credentials`
    reads ``password``)."""
    return SECRET.new(metadata(env, DATA_CREDENTIALS_SECRET, "data"), type="Opaque",
                      stringData={"password": password})


def snapshot_reader_secret(env: Environment, password: str) -> Manifest:
    """The password of ``chat_snapshot``, the role other environments' snapshots read this
    one's database through (only the columns that are not secret, never writing)."""
    return SECRET.new(metadata(env, SNAPSHOT_READER_SECRET, "postgres"), type="Opaque",
                      stringData={"password": password})
