"""PostgreSQL: a StatefulSet with one volume claim, and its headless Service."""

from __future__ import annotations

from ..constants import POSTGRES_CLIENT_NAME, POSTGRES_NAME, POSTGRES_PORT, POSTGRES_SECRET
from ..environment import Environment
from ..kinds import STATEFULSET
from .common import (
    Manifest,
    container_port,
    container_security,
    exec_probes,
    labels,
    pod_template,
    port,
    resources,
    secret_env,
    service,
    workload,
)
from .data import POSTGRES_DB, POSTGRES_USER

POSTGRES_UID = 70  # the postgres user of the official alpine image
DATA_DIR = "/var/lib/postgresql/data"


def postgres_service(env: Environment) -> Manifest:
    """The StatefulSet's governing Service (its pod's stable name)."""
    return service(env, POSTGRES_NAME, "postgres", [port("postgres", POSTGRES_PORT)],
                   headless=True)


def postgres_client_service(env: Environment) -> Manifest:
    """What clients connect to: a cluster IP, so the name always resolves. A headless name
    looked up while the pod is starting answers "no such name", which the cluster DNS
    then caches (30 s with the usual CoreDNS settings) and the client keeps failing long
    after the database is up; a cluster IP without a ready pod refuses at once instead,
    and the client's next attempt gets through."""
    return service(env, POSTGRES_CLIENT_NAME, "postgres", [port("postgres", POSTGRES_PORT)])


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
    container = {
        "name": "postgres",
        "image": env.postgres_image,
        "env": [
            {"name": "POSTGRES_USER", "value": POSTGRES_USER},
            {"name": "POSTGRES_DB", "value": POSTGRES_DB},
            secret_env("POSTGRES_PASSWORD", POSTGRES_SECRET, "password"),
            {"name": "PGDATA", "value": f"{DATA_DIR}/pgdata"},
        ],
        "ports": [container_port("postgres", POSTGRES_PORT)],
        "startupProbe": {"exec": {"command": ready}, "periodSeconds": 2,
                         "failureThreshold": 150},
        **exec_probes(ready),
        "resources": resources(env.postgres_resources),
        "securityContext": container_security(),
        "volumeMounts": [
            {"name": "data", "mountPath": DATA_DIR},
            {"name": "run", "mountPath": "/var/run/postgresql"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    template = pod_template(env, "postgres", uid=POSTGRES_UID, containers=[container],
                            volumes=[{"name": "run", "emptyDir": {}},
                                     {"name": "tmp", "emptyDir": {}}],
                            terminationGracePeriodSeconds=60)
    return workload(STATEFULSET, env, POSTGRES_NAME, "postgres", wanted=1, template=template,
                    serviceName=POSTGRES_NAME,
                    persistentVolumeClaimRetentionPolicy={"whenDeleted": "Retain",
                                                          "whenScaled": "Retain"},
                    volumeClaimTemplates=[claim])
