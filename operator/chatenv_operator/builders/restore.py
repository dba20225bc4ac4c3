"""A snapshot's restore: the Job that copies the source environment's users and visible
messages into this one's empty database before the chat service starts, and the Secret it
reads the source from (the source's read-only role, never its owner)."""

from __future__ import annotations

import base64

from ..constants import (
    CONFIGMAP_NAME,
    DATA_CREDENTIALS_SECRET,
    DATA_SOURCE_SECRET,
    POSTGRES_CLIENT_NAME,
    POSTGRES_PORT,
    POSTGRES_SECRET,
    RESTORE_NAME,
)
from ..environment import Environment, Snapshot
from ..kinds import JOB, SECRET
from .chat import CHAT_UID
from .common import (
    Manifest,
    container_security,
    metadata,
    pod_template,
    resources,
    secret_env,
)
from .data import POSTGRES_DB

COMPONENT = "data-restore"
"""Its pods' app.kubernetes.io/name: what a source's NetworkPolicy admits to PostgreSQL."""
ATTEMPTS = 3
READER_ROLE = "chat_snapshot"


def source_data(snapshot: Snapshot) -> dict[str, str]:
    """What ``restore-snapshot`` reads (chat_service.seeding.SnapshotSource), exactly."""
    return {
        "SNAPSHOT_HOST": f"{POSTGRES_CLIENT_NAME}.{snapshot.namespace}.svc",
        "SNAPSHOT_PORT": str(POSTGRES_PORT),
        "SNAPSHOT_DB": POSTGRES_DB,
        "SNAPSHOT_USER": READER_ROLE,
        "SNAPSHOT_PASSWORD": snapshot.password,
        "SNAPSHOT_NAME": snapshot.source,
    }


def data_source_secret(env: Environment, snapshot: Snapshot) -> Manifest:
    """Created once (the operator may create Secrets, never change them), base64 as the API
    server stores it."""
    data = {k: base64.b64encode(v.encode()).decode() for k, v in source_data(snapshot).items()}
    return SECRET.new(metadata(env, DATA_SOURCE_SECRET, COMPONENT), type="Opaque", data=data)


def restore_job(env: Environment) -> Manifest:
    """``restore-snapshot`` with the chat image, three attempts; no API token, no Redis
    password. Its last words (stderr) become the termination message the operator reports
    when it fails."""
    container = {
        "name": "restore",
        "image": env.chat_image,
        "command": ["python", "-m", "chat_service", "restore-snapshot"],
        "envFrom": [{"configMapRef": {"name": CONFIGMAP_NAME}},
                    {"secretRef": {"name": DATA_SOURCE_SECRET}}],
        "env": [secret_env("POSTGRES_PASSWORD", POSTGRES_SECRET, "password"),
                secret_env("DATA_PASSWORD", DATA_CREDENTIALS_SECRET, "password")],
        "resources": resources(env.chat_resources),
        "securityContext": container_security(),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    template = pod_template(env, COMPONENT, uid=CHAT_UID, containers=[container],
                            volumes=[{"name": "tmp", "emptyDir": {}}], restartPolicy="Never")
    return JOB.new(metadata(env, RESTORE_NAME, COMPONENT), spec={
        "backoffLimit": ATTEMPTS - 1,
        "template": template,
    })
