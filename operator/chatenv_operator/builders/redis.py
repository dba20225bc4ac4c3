"""Redis: sessions, rate limits and live-update fan-out of the chat service."""

from __future__ import annotations

from ..constants import REDIS_DATA_CLAIM, REDIS_NAME, REDIS_PORT, REDIS_SECRET
from ..diffing import quantity
from ..environment import Environment
from ..kinds import DEPLOYMENT, PVC
from .common import (
    Manifest,
    container_port,
    container_security,
    exec_probes,
    metadata,
    pod_template,
    port,
    resources,
    secret_env,
    service,
    workload,
)

REDIS_UID = 999  # the redis user of the official image
MAXMEMORY_SHARE = 0.8
"""Of the container's memory limit: the rest is Redis's own overhead and the copy-on-write
pages of an append-only-file rewrite."""


def redis_service(env: Environment) -> Manifest:
    return service(env, REDIS_NAME, "redis", [port("redis", REDIS_PORT)])


def redis_volume_claim(env: Environment) -> Manifest:
    """Redis's append-only file: sessions and limits survive a restart. In PostgreSQL's
    storage class; it lives as long as the namespace."""
    spec: Manifest = {"accessModes": ["ReadWriteOnce"],
                      "resources": {"requests": {"storage": env.redis_storage_size}}}
    if env.postgres_storage_class:
        spec["storageClassName"] = env.postgres_storage_class
    return PVC.new(metadata(env, REDIS_DATA_CLAIM, "redis"), spec=spec)


def redis_settings(env: Environment) -> list[str]:
    """redis-server's options beside its config file (which holds only the password):
    every write in the append-only file, fsync'd each second; memory capped at
    MAXMEMORY_SHARE of the container's limit, and under pressure the keys nearest their
    expiry go first (the chat service's keys all expire, its counters long before its
    sessions)."""
    settings = ["--appendonly", "yes", "--appendfsync", "everysec"]
    limit = quantity(env.redis_resources.limits.get("memory"))
    if limit is not None:
        settings += ["--maxmemory", str(int(limit * 8 // 10))]
    return [*settings, "--maxmemory-policy", "volatile-ttl"]


def redis_deployment(env: Environment) -> Manifest:
    # redis-cli takes the password from REDISCLI_AUTH, so it never shows in a process list.
    ping = ["sh", "-c", "redis-cli -h 127.0.0.1 ping | grep -q PONG"]
    container = {
        "name": "redis",
        "image": env.redis_image,
        "command": ["redis-server", "/etc/redis/redis.conf", *redis_settings(env)],
        "env": [secret_env("REDISCLI_AUTH", REDIS_SECRET, "password")],
        "ports": [container_port("redis", REDIS_PORT)],
        **exec_probes(ping),
        "resources": resources(env.redis_resources),
        "securityContext": container_security(),
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/redis", "readOnly": True},
            {"name": "data", "mountPath": "/data"},
        ],
    }
    volumes = [
        {"name": "config", "secret": {"secretName": REDIS_SECRET,
                                      "items": [{"key": "redis.conf", "path": "redis.conf"}]}},
        {"name": "data", "persistentVolumeClaim": {"claimName": REDIS_DATA_CLAIM}},
    ]
    # Recreate: one pod at a time holds the volume.
    return workload(DEPLOYMENT, env, REDIS_NAME, "redis", wanted=1,
                    strategy={"type": "Recreate"},
                    template=pod_template(env, "redis", uid=REDIS_UID, containers=[container],
                                          volumes=volumes))
