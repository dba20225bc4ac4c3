"""What a DevSlot makes: its ChatEnvironment, and the agent with its namespace-bound rights."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..constants import (
    AGENT_CLUSTER_ROLE,
    AGENT_NAME,
    AGENT_READONLY_CLUSTER_ROLE,
    ANNOTATION_REFRESHED_AT,
    ANNOTATION_TOUCHED_AT,
    API_VERSION,
    DEVSLOT_KIND,
    LABEL_COMPONENT,
    LABEL_DEVSLOT,
    LABEL_ISSUE,
    LABEL_MANAGED_BY,
    LABEL_MODE,
    LABEL_NAME,
    LABEL_PART_OF,
    LABEL_PR,
    LABEL_REPOSITORY,
    LABEL_SLOT,
    MANAGED_BY,
    PART_OF,
    SLOT_ENV_PREFIX,
)
from ..environment import Owner
from ..kinds import CHATENV, DEPLOYMENT, ROLE_BINDING, SECRET, SERVICE_ACCOUNT
from .common import Manifest, container_security, env_var, pod_security

AGENT_UID = 10001


def repository_label(repository: str) -> str:
    """owner/name as a label value: '/' is not allowed there, and 63 characters at most."""
    value = re.sub(r"[^A-Za-z0-9_.-]", ".", repository)[:63]
    return value.strip("._-") or "unknown"


def devslot_owner(devslot: Mapping[str, Any]) -> Owner:
    meta = devslot["metadata"]
    return Owner(API_VERSION, DEVSLOT_KIND, meta["name"], meta["uid"])


def devslot_labels(devslot: Mapping[str, Any]) -> dict[str, str]:
    spec = devslot["spec"]
    labels = {
        LABEL_PART_OF: PART_OF,
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_DEVSLOT: devslot["metadata"]["name"],
        LABEL_REPOSITORY: repository_label(spec["repository"]),
        LABEL_MODE: spec.get("mode", "dev"),
    }
    if spec.get("issue"):
        labels[LABEL_ISSUE] = str(spec["issue"])
    if spec.get("pr"):
        labels[LABEL_PR] = str(spec["pr"])
    return labels


def environment_name(slot: int) -> str:
    return f"{SLOT_ENV_PREFIX}{slot}"


def slot_environment(devslot: Mapping[str, Any], slot: int, *,
                     data: str | None = None) -> Manifest:
    """The ChatEnvironment of stage `ai` that a DevSlot owns; its name is the slot's claim.
    ``data``: its spec.data.mode (fixtures: the demo set; snapshot: of the one ai-staging
    environment); None: no spec.data (an environment made before it existed keeps none)."""
    spec: dict[str, Any] = {"stage": "ai", "slot": slot}
    if data:
        spec["data"] = {"mode": data}
    images = devslot["spec"].get("images") or {}
    for component in ("chat", "postgres", "redis", "jaeger"):
        if images.get(component):
            spec[component] = {"image": images[component]}
    meta: Manifest = {"name": environment_name(slot),
                      "labels": {**devslot_labels(devslot), LABEL_SLOT: str(slot)},
                      "ownerReferences": [devslot_owner(devslot).reference()]}
    touched = (devslot["metadata"].get("annotations") or {}).get(ANNOTATION_REFRESHED_AT)
    if touched:  # a `chatenv touch` wakes the slot's environment
        meta["annotations"] = {ANNOTATION_TOUCHED_AT: str(touched)}
    return CHATENV.new(meta, spec=spec)


def agent_name(devslot: Mapping[str, Any]) -> str:
    """`agent` in a slot's own namespace; per-DevSlot in the shared ai-staging namespace."""
    if devslot["spec"].get("mode") == "repair":
        return f"{AGENT_NAME}-{devslot['metadata']['name']}"[:63].rstrip("-.")
    return AGENT_NAME


def _agent_meta(devslot: Mapping[str, Any], namespace: str, name: str) -> Manifest:
    return {
        "name": name,
        "namespace": namespace,
        "labels": {**devslot_labels(devslot), LABEL_NAME: "agent", LABEL_COMPONENT: "agent"},
        "ownerReferences": [devslot_owner(devslot).reference()],
    }


def agent_service_account(devslot: Mapping[str, Any], namespace: str) -> Manifest:
    return SERVICE_ACCOUNT.new(_agent_meta(devslot, namespace, agent_name(devslot)))


def agent_role_binding(devslot: Mapping[str, Any], namespace: str) -> Manifest:
    """Binds an agent ClusterRole inside this one namespace: no rights anywhere else."""
    role = (AGENT_READONLY_CLUSTER_ROLE if devslot["spec"].get("mode") == "plan"
            else AGENT_CLUSTER_ROLE)
    name = agent_name(devslot)
    return ROLE_BINDING.new(
        _agent_meta(devslot, namespace, name),
        roleRef={"apiGroup": ROLE_BINDING.group, "kind": "ClusterRole", "name": role},
        subjects=[{"kind": SERVICE_ACCOUNT.kind, "name": name, "namespace": namespace}])


def agent_secret_name(devslot: Mapping[str, Any], source: str) -> str:
    return f"{agent_name(devslot)}-{source}"[:253]


def agent_secret(devslot: Mapping[str, Any], namespace: str, source: str,
                 data: Mapping[str, str]) -> Manifest:
    """A copy of a Secret of the operator's namespace, for the agent's environment."""
    return SECRET.new(_agent_meta(devslot, namespace, agent_secret_name(devslot, source)),
                      type="Opaque", data=dict(data))


def agent_deployment(devslot: Mapping[str, Any], namespace: str, *, slot: int | None,
                     url: str) -> Manifest:
    spec = devslot["spec"]
    agent = spec["agent"]
    name = agent_name(devslot)
    selector = {LABEL_NAME: "agent", LABEL_DEVSLOT: devslot["metadata"]["name"]}
    env = [
        env_var("SLOT", "" if slot is None else str(slot)),
        env_var("ISSUE_NUMBER", str(spec.get("issue") or "")),
        env_var("PR_NUMBER", str(spec.get("pr") or "")),
        env_var("REPOSITORY", spec["repository"]),
        env_var("MODE", spec.get("mode", "dev")),
        env_var("NAMESPACE", namespace),
        env_var("URL", url),
        *(env_var(e["name"], e["value"]) for e in agent.get("env") or ()),
    ]
    container: Manifest = {
        "name": "agent",
        "image": agent["image"],
        "env": env,
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                      "limits": {"cpu": "2", "memory": "2Gi"}},
        "securityContext": container_security(read_only_root=False),
    }
    refs = agent.get("secretRefs") or []
    if refs:
        container["envFrom"] = [{"secretRef": {"name": agent_secret_name(devslot, r)}}
                                for r in refs]
    return DEPLOYMENT.new(_agent_meta(devslot, namespace, name), spec={
        "replicas": 1,
        "strategy": {"type": "Recreate"},
        "selector": {"matchLabels": selector},
        "template": {
            "metadata": {"labels": {**devslot_labels(devslot), **selector}},
            "spec": {
                "serviceAccountName": name,
                "securityContext": pod_security(AGENT_UID),
                "containers": [container],
            },
        },
    })
