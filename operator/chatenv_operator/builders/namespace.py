"""The namespace and its guard rails: quota, limit range, network policy."""

from __future__ import annotations

from ..constants import (
    LABEL_ENVIRONMENT,
    LABEL_MANAGED_BY,
    LABEL_PART_OF,
    LABEL_SLOT,
    LABEL_STAGE,
    LIMIT_RANGE_NAME,
    MANAGED_BY,
    NETWORK_POLICY_NAME,
    PART_OF,
    QUOTA_NAME,
)
from ..environment import Environment
from ..kinds import LIMIT_RANGE, NAMESPACE, NETWORK_POLICY, RESOURCE_QUOTA
from .common import Manifest, metadata


def namespace(env: Environment) -> Manifest:
    """The environment's namespace, owned by the ChatEnvironment (deleting it cascades)."""
    labels = {
        LABEL_PART_OF: PART_OF,
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_ENVIRONMENT: env.name,
        LABEL_STAGE: env.stage,
        # Every pod the operator makes passes the restricted profile; keep it that way.
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/warn": "restricted",
        **env.extra_labels,
    }
    if env.slot is not None:
        labels[LABEL_SLOT] = str(env.slot)
    return NAMESPACE.new({"name": env.namespace, "labels": labels,
                          "ownerReferences": [env.owner.reference()]})


def resource_quota(env: Environment) -> Manifest:
    return RESOURCE_QUOTA.new(metadata(env, QUOTA_NAME, "quota"), spec={"hard": dict(env.quota)})


def limit_range(env: Environment) -> Manifest:
    limit: Manifest = {"type": "Container"}
    if env.limit_default:
        limit["default"] = dict(env.limit_default)
    if env.limit_default_request:
        limit["defaultRequest"] = dict(env.limit_default_request)
    return LIMIT_RANGE.new(metadata(env, LIMIT_RANGE_NAME, "quota"), spec={"limits": [limit]})


def network_policy(env: Environment) -> Manifest:
    """Ingress only from pods of this namespace and from the ingress controller."""
    return NETWORK_POLICY.new(metadata(env, NETWORK_POLICY_NAME, "network-policy"), spec={
        "podSelector": {},
        "policyTypes": ["Ingress"],
        "ingress": [
            {"from": [{"podSelector": {}}]},
            {"from": [{"namespaceSelector": {"matchLabels": {
                "kubernetes.io/metadata.name": env.ingress_controller_namespace}}}]},
        ],
    })
