"""The chat service: migrations in an init container, the Deployment, its Service."""

from __future__ import annotations

from ..constants import (
    ACTIVITY_PORT,
    ANNOTATION_CONFIG_HASH,
    CHAT_NAME,
    CHAT_PORT,
    CONFIGMAP_NAME,
    DATA_CREDENTIALS_SECRET,
    METRICS_PORT,
    POSTGRES_SECRET,
    REDIS_SECRET,
    SNAPSHOT_READER_SECRET,
    SNAPSHOT_STAGE,
)
from ..environment import Environment
from ..kinds import DEPLOYMENT
from .common import (
    Manifest,
    container_port,
    container_security,
    env_var,
    pod_template,
    resources,
    secret_env,
    service,
    workload,
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


def migrate_command(env: Environment) -> list[str]:
    """``migrate``, loading the fixtures first thing (once: the data set is recorded with
    the data) for mode fixtures. Ready chat pods therefore mean the data is in."""
    fixtures = ["--fixtures", env.data_fixtures] if env.data_mode == "fixtures" else []
    return ["python", "-m", "chat_service", "migrate", *fixtures]


def migrate_env(env: Environment) -> list[Manifest]:
    """What only ``migrate`` reads: the fixtures' placeholder password, and on a snapshot
    source (stage ai-staging) the password of the read-only role snapshots read through."""
    out = []
    if env.data_mode == "fixtures":
        out.append(secret_env("DATA_PASSWORD", DATA_CREDENTIALS_SECRET, "password"))
    if env.stage == SNAPSHOT_STAGE:
        out.append(secret_env("SNAPSHOT_READER_PASSWORD", SNAPSHOT_READER_SECRET, "password"))
    return out


def chat_deployment(env: Environment) -> Manifest:
    common = {
        "image": env.chat_image,
        "envFrom": [{"configMapRef": {"name": CONFIGMAP_NAME}}],
        "env": chat_env(env),
        "resources": resources(env.chat_resources),
        "securityContext": container_security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    # Safe with several replicas: migrate takes a PostgreSQL advisory lock.
    migrate = {"name": "migrate", "command": migrate_command(env),
               **common, "env": [*chat_env(env), *migrate_env(env)]}
    serve = {
        "name": "chat",
        "command": ["python", "-m", "chat_service", "serve"],
        # metrics: scraped from the pod, never through the Service the Ingress routes.
        "ports": [container_port("http", CHAT_PORT), container_port("metrics", METRICS_PORT),
                  container_port("activity", ACTIVITY_PORT)],
        "readinessProbe": {"httpGet": {"path": "/health/readyz", "port": "http"},
                           "periodSeconds": 5, "timeoutSeconds": 3},
        "livenessProbe": {"httpGet": {"path": "/health/livez", "port": "http"},
                          "periodSeconds": 10, "timeoutSeconds": 3, "failureThreshold": 6},
        # Endpoints and the ingress controller take a moment to forget a terminating
        # pod: keep serving until they have, then stop.
        "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SECONDS}}},
        **common,
    }
    template = pod_template(env, "chat", uid=CHAT_UID, containers=[serve],
                            volumes=[{"name": "tmp", "emptyDir": {}}],
                            annotations={ANNOTATION_CONFIG_HASH: config_hash(env)},
                            terminationGracePeriodSeconds=30, initContainers=[migrate])
    return workload(DEPLOYMENT, env, CHAT_NAME, "chat", wanted=env.chat_replicas,
                    revisionHistoryLimit=3,
                    strategy={"type": "RollingUpdate",
                              "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                    template=template)


def chat_service(env: Environment) -> Manifest:
    """The API and UI on port 80 (what the Ingress routes), and when a person last made a
    request on the activity port (for the operator: sleeping when idle)."""
    return service(env, CHAT_NAME, "chat", [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
        {"name": "activity", "port": ACTIVITY_PORT, "targetPort": "activity",
         "protocol": "TCP"}])
