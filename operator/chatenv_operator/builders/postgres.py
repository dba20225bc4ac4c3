"""PostgreSQL: a StatefulSet with one volume claim, and its headless Service."""

from __future__ import annotations

from ..constants import POSTGRES_NAME, POSTGRES_PORT, POSTGRES_SECRET
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
from .data import POSTGRES_DB, POSTGRES_USER

POSTGRES_UID = 70  # the postgres user of the official alpine image
DATA_DIR = "/var/lib/postgresql/data"


def postgres_service(env: Environment) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(env, POSTGRES_NAME, "postgres"),
        "spec": {
            "clusterIP": "None",
            "selector": selector_labels(env, "postgres"),
            "ports": [{"name": "postgres", "port": POSTGRES_PORT, "targetPort": "postgres",
                       "protocol": "TCP"}],
        },
    }


def postgres_statefulset(env: Environment) -> Manifest:
    ready = ["pg_isready", "-h", "127.0.0.1", "-U", POSTGRES_USER, "-d", POSTGRES_DB]
    claim: Manifest = {
        "metadata": {"name": "data", "labels": labels(env, "postgres")},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": env.postgres_storage_size}},
        },
    }
    if env.postgres_storage_class:
        claim["spec"]["storageClassName"] = env.postgres_storage_class
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(env, POSTGRES_NAME, "postgres"),
        "spec": {
            "serviceName": POSTGRES_NAME,
            "replicas": replicas(env, 1),
            "selector": {"matchLabels": selector_labels(env, "postgres")},
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain",
                                                     "whenScaled": "Retain"},
            "template": {
                "metadata": {"labels": labels(env, "postgres")},
                "spec": {
                    "securityContext": pod_security(POSTGRES_UID),
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": 60,
                    "containers": [{
                        "name": "postgres",
                        "image": env.postgres_image,
                        "env": [
                            {"name": "POSTGRES_USER", "value": POSTGRES_USER},
                            {"name": "POSTGRES_DB", "value": POSTGRES_DB},
                            secret_env("POSTGRES_PASSWORD", POSTGRES_SECRET, "password"),
                            {"name": "PGDATA", "value": f"{DATA_DIR}/pgdata"},
                        ],
                        "ports": [{"name": "postgres", "containerPort": POSTGRES_PORT,
                                   "protocol": "TCP"}],
                        "startupProbe": {"exec": {"command": ready}, "periodSeconds": 2,
                                         "failureThreshold": 150},
                        "readinessProbe": {"exec": {"command": ready}, "periodSeconds": 5,
                                           "timeoutSeconds": 3},
                        "livenessProbe": {"exec": {"command": ready}, "periodSeconds": 10,
                                          "timeoutSeconds": 5, "failureThreshold": 6},
                        "resources": resources(env.postgres_resources),
                        "securityContext": container_security(),
                        "volumeMounts": [
                            {"name": "data", "mountPath": DATA_DIR},
                            {"name": "run", "mountPath": "/var/run/postgresql"},
                            {"name": "tmp", "mountPath": "/tmp"},
                        ],
                    }],
                    "volumes": [{"name": "run", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
                },
            },
            "volumeClaimTemplates": [claim],
        },
    }
