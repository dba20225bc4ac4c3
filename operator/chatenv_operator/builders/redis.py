"""Redis: sessions, rate limits and live-update fan-out of the chat service."""

from __future__ import annotations

from ..constants import REDIS_NAME, REDIS_PORT, REDIS_SECRET
from ..environment import Environment
from ..kinds import DEPLOYMENT
from .common import (
    Manifest,
    container_port,
    container_security,
    exec_probes,
    pod_template,
    port,
    resources,
    secret_env,
    service,
    workload,
)

REDIS_UID = 999  # the redis user of the official image


def redis_service(env: Environment) -> Manifest:
    return service(env, REDIS_NAME, "redis", [port("redis", REDIS_PORT)])


def redis_deployment(env: Environment) -> Manifest:
    # redis-cli takes the password from REDISCLI_AUTH, so it never shows in a process list.
    ping = ["sh", "-c", "redis-cli -h 127.0.0.1 ping | grep -q PONG"]
    container = {
        "name": "redis",
        "image": env.redis_image,
        "command": ["redis-server", "/etc/redis/redis.conf"],
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
        {"name": "data", "emptyDir": {}},
    ]
    return workload(DEPLOYMENT, env, REDIS_NAME, "redis", wanted=1,
                    strategy={"type": "Recreate"},
                    template=pod_template(env, "redis", uid=REDIS_UID, containers=[container],
                                          volumes=volumes))
