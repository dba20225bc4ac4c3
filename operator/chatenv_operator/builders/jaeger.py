"""Jaeger v2 with in-memory storage: OTLP in (gRPC 4317, HTTP 4318), UI under /jaeger."""

from __future__ import annotations

import functools
import hashlib

import yaml

from ..constants import (
    ANNOTATION_CONFIG_HASH,
    JAEGER_HEALTH_PORT,
    JAEGER_NAME,
    JAEGER_OTLP_GRPC_PORT,
    JAEGER_OTLP_HTTP_PORT,
    JAEGER_UI_PORT,
)
from ..environment import Environment
from ..kinds import CONFIGMAP, DEPLOYMENT
from .common import (
    Manifest,
    container_port,
    container_security,
    metadata,
    pod_template,
    port,
    resources,
    service,
    workload,
)

JAEGER_UID = 10001
UI_BASE_PATH = "/jaeger"


def jaeger_config_text(env: Environment) -> str:
    return _config_text(env.jaeger_max_traces)


@functools.lru_cache(maxsize=16)
def _config_text(max_traces: int) -> str:
    """Jaeger's configuration: one YAML dump per distinct setting (a pass builds it often)."""
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
                "memory": {"max_traces": max_traces}}}},
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
    return CONFIGMAP.new(metadata(env, f"{JAEGER_NAME}-config", "jaeger"),
                         data={"config.yaml": jaeger_config_text(env)})


def jaeger_service(env: Environment) -> Manifest:
    return service(env, JAEGER_NAME, "jaeger", [
        port("otlp-grpc", JAEGER_OTLP_GRPC_PORT, appProtocol="grpc"),
        port("otlp-http", JAEGER_OTLP_HTTP_PORT),
        port("ui", JAEGER_UI_PORT),
    ])


def jaeger_deployment(env: Environment) -> Manifest:
    digest = hashlib.sha256(jaeger_config_text(env).encode()).hexdigest()[:16]
    health = {"httpGet": {"path": "/status", "port": "health"}}
    container = {
        "name": "jaeger",
        "image": env.jaeger_image,
        "args": ["--config", "/etc/jaeger/config.yaml"],
        "ports": [container_port("otlp-grpc", JAEGER_OTLP_GRPC_PORT),
                  container_port("otlp-http", JAEGER_OTLP_HTTP_PORT),
                  container_port("ui", JAEGER_UI_PORT),
                  container_port("health", JAEGER_HEALTH_PORT)],
        "readinessProbe": {**health, "periodSeconds": 5},
        "livenessProbe": {**health, "periodSeconds": 10, "failureThreshold": 6},
        "resources": resources(env.jaeger_resources),
        "securityContext": container_security(),
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/jaeger", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    volumes = [{"name": "config", "configMap": {"name": f"{JAEGER_NAME}-config"}},
               {"name": "tmp", "emptyDir": {}}]
    return workload(DEPLOYMENT, env, JAEGER_NAME, "jaeger", wanted=1,
                    # In-memory storage: two pods would split the traces between them.
                    strategy={"type": "Recreate"},
                    template=pod_template(env, "jaeger", uid=JAEGER_UID, containers=[container],
                                          volumes=volumes,
                                          annotations={ANNOTATION_CONFIG_HASH: digest}))
