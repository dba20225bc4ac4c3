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
from ..kinds import SERVICE, Kind

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
    """Suspended or sleeping environments keep every object but run no pods."""
    return 0 if env.scaled_down else wanted


def secret_env(name: str, secret: str, key: str) -> Manifest:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def env_var(name: str, value: str) -> Manifest:
    """An env entry; the API server drops an empty value, so leave it out to compare equal."""
    return {"name": name, "value": value} if value else {"name": name}


# ---------------------------------------------------------------------- scaffolding


def port(name: str, number: int, **extra: Any) -> Manifest:
    """A Service port forwarding to the container port of the same name."""
    return {"name": name, "port": number, "targetPort": name, "protocol": "TCP", **extra}


def container_port(name: str, number: int) -> Manifest:
    return {"name": name, "containerPort": number, "protocol": "TCP"}


def exec_probes(command: list[str]) -> Manifest:
    """Readiness every 5 s and liveness every 10 s (six failures) by running ``command``."""
    return {"readinessProbe": {"exec": {"command": command}, "periodSeconds": 5,
                               "timeoutSeconds": 3},
            "livenessProbe": {"exec": {"command": command}, "periodSeconds": 10,
                              "timeoutSeconds": 5, "failureThreshold": 6}}


def service(env: Environment, name: str, component: str, ports: list[Manifest], *,
            headless: bool = False) -> Manifest:
    """A Service selecting the pods of ``component``."""
    spec: Manifest = {"clusterIP": "None"} if headless else {}
    spec.update({"selector": selector_labels(env, component), "ports": ports})
    return SERVICE.new(metadata(env, name, component), spec=spec)


def pod_template(env: Environment, component: str, *, uid: int, containers: list[Manifest],
                 volumes: list[Manifest], annotations: dict[str, str] | None = None,
                 **pod: Any) -> Manifest:
    """A pod that passes the `restricted` profile, with no API token, labelled as
    ``component``; ``pod`` adds fields between the security settings and the containers."""
    meta: Manifest = {"labels": labels(env, component)}
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": {
        "securityContext": pod_security(uid),
        "automountServiceAccountToken": False,
        **pod,
        "containers": containers,
        "volumes": volumes,
    }}


def workload(kind: Kind, env: Environment, name: str, component: str, *, wanted: int,
             template: Manifest, **spec: Any) -> Manifest:
    """A Deployment or StatefulSet of ``component``'s pods (none while suspended)."""
    return kind.new(metadata(env, name, component), spec={
        "replicas": replicas(env, wanted),
        **spec,
        "selector": {"matchLabels": selector_labels(env, component)},
        "template": template,
    })
