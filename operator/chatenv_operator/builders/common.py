"""Labels, metadata and security settings shared by every builder."""

from __future__ import annotations

from typing import Any

from ..config import Resources
from ..constants import (
    LABEL_COMPONENT,
    LABEL_ENVIRONMENT,
    LABEL_INSTANCE,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    LABEL_PART_OF,
    MANAGED_BY,
    PART_OF,
)
from ..environment import Environment

Manifest = dict[str, Any]


def selector_labels(env: Environment, component: str) -> dict[str, str]:
    """The stable subset used in selectors (never changes for a live object)."""
    return {LABEL_NAME: component, LABEL_INSTANCE: env.name}


def labels(env: Environment, component: str) -> dict[str, str]:
    return {
        **selector_labels(env, component),
        LABEL_COMPONENT: component,
        LABEL_PART_OF: PART_OF,
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_ENVIRONMENT: env.name,
    }


def metadata(env: Environment, name: str, component: str,
             annotations: dict[str, str] | None = None) -> Manifest:
    meta: Manifest = {"name": name, "namespace": env.namespace, "labels": labels(env, component)}
    if annotations:
        meta["annotations"] = annotations
    return meta


def pod_security(uid: int) -> Manifest:
    """A pod that passes the `restricted` Pod Security Standard."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security(read_only_root: bool = True) -> Manifest:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": read_only_root,
        "capabilities": {"drop": ["ALL"]},
    }


def resources(res: Resources) -> Manifest:
    return res.to_manifest()


def replicas(env: Environment, wanted: int) -> int:
    """Suspended environments keep every object but run no pods."""
    return 0 if env.suspended else wanted


def secret_env(name: str, secret: str, key: str) -> Manifest:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def env_var(name: str, value: str) -> Manifest:
    """An env entry; the API server drops an empty value, so leave it out to compare equal."""
    return {"name": name, "value": value} if value else {"name": name}
