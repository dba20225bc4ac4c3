"""Jaeger v2 with in-memory storage: OTLP in (gRPC 4317, HTTP 4318), UI under /jaeger."""

from __future__ import annotations

import hashlib

import yaml

from ..constants import (
    JAEGER_HEALTH_PORT,
    JAEGER_NAME,
    JAEGER_OTLP_GRPC_PORT,
    JAEGER_OTLP_HTTP_PORT,
    JAEGER_UI_PORT,
)
from ..environment import Environment
from .common import (
    Manifest,
    container_security,
    labels,
    metadata,
    pod_security,
    replicas,
    resources,
    selector_labels,
)

JAEGER_UID = 10001
UI_BASE_PATH = "/jaeger"


def jaeger_config_text(env: Environment) -> str:
    config = {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query", "healthcheckv2"],
            "pipelines": {"traces": {"receivers": ["otlp"], "processors": ["batch"],
                                     "exporters": ["jaeger_storage_exporter"]}},
        },
        "extensions": {
            "healthcheckv2": {"use_v2": True,
                              "http": {"endpoint": f"0.0.0.0:{JAEGER_HEALTH_PORT}"}},
            "jaeger_storage": {"backends": {"memstore": {
                "memory": {"max_traces": env.jaeger_max_traces}}}},
            "jaeger_query": {"storage": {"traces": "memstore"}, "base_path": UI_BASE_PATH,
                             "http": {"endpoint": f"0.0.0.0:{JAEGER_UI_PORT}"}},
        },
        "receivers": {"otlp": {"protocols": {
            "grpc": {"endpoint": f"0.0.0.0:{JAEGER_OTLP_GRPC_PORT}"},
            "http": {"endpoint": f"0.0.0.0:{JAEGER_OTLP_HTTP_PORT}"}}}},
        "processors": {"batch": {}},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": "memstore"}},
    }
    return str(yaml.safe_dump(config, sort_keys=True))


def jaeger_configmap(env: Environment) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(env, f"{JAEGER_NAME}-config", "jaeger"),
        "data": {"config.yaml": jaeger_config_text(env)},
    }


def jaeger_service(env: Environment) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(env, JAEGER_NAME, "jaeger"),
        "spec": {
            "selector": selector_labels(env, "jaeger"),
            "ports": [
                {"name": "otlp-grpc", "port": JAEGER_OTLP_GRPC_PORT, "targetPort": "otlp-grpc",
                 "protocol": "TCP", "appProtocol": "grpc"},
                {"name": "otlp-http", "port": JAEGER_OTLP_HTTP_PORT, "targetPort": "otlp-http",
                 "protocol": "TCP"},
                {"name": "ui", "port": JAEGER_UI_PORT, "targetPort": "ui", "protocol": "TCP"},
            ],
        },
    }


def jaeger_deployment(env: Environment) -> Manifest:
    digest = hashlib.sha256(jaeger_config_text(env).encode()).hexdigest()[:16]
    health = {"httpGet": {"path": "/status", "port": "health"}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(env, JAEGER_NAME, "jaeger"),
        "spec": {
            "replicas": replicas(env, 1),
            # In-memory storage: two pods would split the traces between them.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector_labels(env, "jaeger")},
            "template": {
                "metadata": {
                    "labels": labels(env, "jaeger"),
                    "annotations": {"chatenv.dev/config-hash": digest},
                },
                "spec": {
                    "securityContext": pod_security(JAEGER_UID),
                    "automountServiceAccountToken": False,
                    "containers": [{
                        "name": "jaeger",
                        "image": env.jaeger_image,
                        "args": ["--config", "/etc/jaeger/config.yaml"],
                        "ports": [
                            {"name": "otlp-grpc", "containerPort": JAEGER_OTLP_GRPC_PORT,
                             "protocol": "TCP"},
                            {"name": "otlp-http", "containerPort": JAEGER_OTLP_HTTP_PORT,
                             "protocol": "TCP"},
                            {"name": "ui", "containerPort": JAEGER_UI_PORT, "protocol": "TCP"},
                            {"name": "health", "containerPort": JAEGER_HEALTH_PORT,
                             "protocol": "TCP"},
                        ],
                        "readinessProbe": {**health, "periodSeconds": 5},
                        "livenessProbe": {**health, "periodSeconds": 10, "failureThreshold": 6},
                        "resources": resources(env.jaeger_resources),
                        "securityContext": container_security(),
                        "volumeMounts": [
                            {"name": "config", "mountPath": "/etc/jaeger", "readOnly": True},
                            {"name": "tmp", "mountPath": "/tmp"},
                        ],
                    }],
                    "volumes": [
                        {"name": "config", "configMap": {"name": f"{JAEGER_NAME}-config"}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }
