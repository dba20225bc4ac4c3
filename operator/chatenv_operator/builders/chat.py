"""The chat service: migrations in an init container, the Deployment, its Service."""

from __future__ import annotations

from ..constants import (
    ANNOTATION_CONFIG_HASH,
    CHAT_NAME,
    CHAT_PORT,
    CONFIGMAP_NAME,
    POSTGRES_SECRET,
    REDIS_SECRET,
)
from ..environment import Environment
from .common import (
    Manifest,
    container_security,
    env_var,
    labels,
    metadata,
    pod_security,
    replicas,
    resources,
    secret_env,
    selector_labels,
)
from .data import config_hash

CHAT_UID = 10001  # the non-root user of Dockerfile.chat
PRE_STOP_SECONDS = 5


def chat_env(env: Environment) -> list[Manifest]:
    return [
        secret_env("POSTGRES_PASSWORD", POSTGRES_SECRET, "password"),
        secret_env("REDIS_PASSWORD", REDIS_SECRET, "password"),
        *(env_var(name, value) for name, value in env.chat_env),
    ]


def chat_deployment(env: Environment) -> Manifest:
    common = {
        "image": env.chat_image,
        "envFrom": [{"configMapRef": {"name": CONFIGMAP_NAME}}],
        "env": chat_env(env),
        "resources": resources(env.chat_resources),
        "securityContext": container_security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(env, CHAT_NAME, "chat"),
        "spec": {
            "replicas": replicas(env, env.chat_replicas),
            "revisionHistoryLimit": 3,
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "selector": {"matchLabels": selector_labels(env, "chat")},
            "template": {
                "metadata": {
                    "labels": labels(env, "chat"),
                    "annotations": {ANNOTATION_CONFIG_HASH: config_hash(env)},
                },
                "spec": {
                    "securityContext": pod_security(CHAT_UID),
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": 30,
                    # Safe with several replicas: migrate takes a PostgreSQL advisory lock.
                    "initContainers": [{
                        "name": "migrate",
                        "command": ["python", "-m", "chat_service", "migrate"],
                        **common,
                    }],
                    "containers": [{
                        "name": "chat",
                        "command": ["python", "-m", "chat_service", "serve"],
                        "ports": [{"name": "http", "containerPort": CHAT_PORT, "protocol": "TCP"}],
                        "readinessProbe": {"httpGet": {"path": "/health/readyz", "port": "http"},
                                           "periodSeconds": 5, "timeoutSeconds": 3},
                        "livenessProbe": {"httpGet": {"path": "/health/livez", "port": "http"},
                                          "periodSeconds": 10, "timeoutSeconds": 3,
                                          "failureThreshold": 6},
                        # Endpoints and the ingress controller take a moment to forget a
                        # terminating pod: keep serving until they have, then stop.
                        "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SECONDS}}},
                        **common,
                    }],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def chat_service(env: Environment) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(env, CHAT_NAME, "chat"),
        "spec": {
            "selector": selector_labels(env, "chat"),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }
