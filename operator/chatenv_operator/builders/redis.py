"""Redis: sessions, rate limits and live-update fan-out of the chat service."""

from __future__ import annotations

from ..constants import REDIS_NAME, REDIS_PORT, REDIS_SECRET
from ..environment import Environment
from .common import (
    Manifest,
    container_security,
    labels,
    metadata,
    pod_security,
    replicas,
    resources,
    secret_env,
    selector_labels,
)

REDIS_UID = 999  # the redis user of the official image


def redis_service(env: Environment) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(env, REDIS_NAME, "redis"),
        "spec": {
            "selector": selector_labels(env, "redis"),
            "ports": [{"name": "redis", "port": REDIS_PORT, "targetPort": "redis",
                       "protocol": "TCP"}],
        },
    }


def redis_deployment(env: Environment) -> Manifest:
    # redis-cli takes the password from REDISCLI_AUTH, so it never shows in a process list.
    ping = ["sh", "-c", "redis-cli -h 127.0.0.1 ping | grep -q PONG"]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(env, REDIS_NAME, "redis"),
        "spec": {
            "replicas": replicas(env, 1),
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector_labels(env, "redis")},
            "template": {
                "metadata": {"labels": labels(env, "redis")},
                "spec": {
                    "securityContext": pod_security(REDIS_UID),
                    "automountServiceAccountToken": False,
                    "containers": [{
                        "name": "redis",
                        "image": env.redis_image,
                        "command": ["redis-server", "/etc/redis/redis.conf"],
                        "env": [secret_env("REDISCLI_AUTH", REDIS_SECRET, "password")],
                        "ports": [{"name": "redis", "containerPort": REDIS_PORT,
                                   "protocol": "TCP"}],
                        "readinessProbe": {"exec": {"command": ping}, "periodSeconds": 5,
                                           "timeoutSeconds": 3},
                        "livenessProbe": {"exec": {"command": ping}, "periodSeconds": 10,
                                          "timeoutSeconds": 5, "failureThreshold": 6},
                        "resources": resources(env.redis_resources),
                        "securityContext": container_security(),
                        "volumeMounts": [
                            {"name": "config", "mountPath": "/etc/redis", "readOnly": True},
                            {"name": "data", "mountPath": "/data"},
                        ],
                    }],
                    "volumes": [
                        {"name": "config", "secret": {
                            "secretName": REDIS_SECRET,
                            "items": [{"key": "redis.conf", "path": "redis.conf"}]}},
                        {"name": "data", "emptyDir": {}},
                    ],
                },
            },
        },
    }
