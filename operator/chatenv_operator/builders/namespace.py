"""The namespace and its guard rails: quota, limit range, network policies."""

from __future__ import annotations

from ..constants import (
    ACTIVITY_PORT,
    AGENT_EGRESS_POLICY_NAME,
    ANNOTATION_HOST,
    CHAT_PORT,
    EGRESS_POLICY_NAME,
    JAEGER_UI_PORT,
    LABEL_ENVIRONMENT,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    LABEL_PART_OF,
    LABEL_SLOT,
    LABEL_STAGE,
    LIMIT_RANGE_NAME,
    MANAGED_BY,
    METRICS_PORT,
    NETWORK_POLICY_NAME,
    PART_OF,
    POSTGRES_NAME,
    POSTGRES_PORT,
    QUOTA_NAME,
    SNAPSHOT_STAGE,
)
from ..environment import Environment
from ..kinds import LIMIT_RANGE, NAMESPACE, NETWORK_POLICY, RESOURCE_QUOTA
from .common import Manifest, metadata
from .restore import COMPONENT as RESTORE_COMPONENT


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
    # Every Ingress in the namespace must be for this host (an admission policy reads it).
    return NAMESPACE.new({"name": env.namespace, "labels": labels,
                          "annotations": {ANNOTATION_HOST: env.host},
                          "ownerReferences": [env.owner.reference()]})


# Whatever services.yaml's quota says: nothing in an environment is exposed on the nodes or
# through a cloud load balancer (the Ingress is the way in).
NO_EXPOSED_SERVICES = {"services.loadbalancers": "0", "services.nodeports": "0"}


def resource_quota(env: Environment) -> Manifest:
    return RESOURCE_QUOTA.new(metadata(env, QUOTA_NAME, "quota"),
                              spec={"hard": {**env.quota, **NO_EXPOSED_SERVICES}})


def limit_range(env: Environment) -> Manifest:
    limit: Manifest = {"type": "Container"}
    if env.limit_default:
        limit["default"] = dict(env.limit_default)
    if env.limit_default_request:
        limit["defaultRequest"] = dict(env.limit_default_request)
    return LIMIT_RANGE.new(metadata(env, LIMIT_RANGE_NAME, "quota"), spec={"limits": [limit]})


def _namespace(name: str) -> Manifest:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def _tcp(*ports: int) -> list[Manifest]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def network_policy(env: Environment) -> Manifest:
    """Ingress only from pods of this namespace, from the ingress controller to what the
    Ingress routes (the chat port; Jaeger's UI only when it is public), and from the
    metrics namespace to the chat pods' metrics port, and from the operator's to their
    activity port; on a snapshot source (ai-staging), from other environments' restore
    Jobs to PostgreSQL."""
    routed = (CHAT_PORT, JAEGER_UI_PORT) if env.jaeger_enabled and env.jaeger_public_ui else (
        CHAT_PORT,)
    rules: list[Manifest] = [
        {"from": [{"podSelector": {}}]},
        {"from": [_namespace(env.ingress_controller_namespace)], "ports": _tcp(*routed)},
    ]
    if env.metrics_namespace:
        rules.append({"from": [_namespace(env.metrics_namespace)],
                      "ports": _tcp(METRICS_PORT)})
    if env.operator_namespace:  # when a person last made a request: sleeping when idle
        rules.append({"from": [_namespace(env.operator_namespace)],
                      "ports": _tcp(ACTIVITY_PORT)})
    if env.stage == SNAPSHOT_STAGE:  # a snapshot source: other environments' restore Jobs
        rules.append({"from": [restore_pods()], "ports": _tcp(POSTGRES_PORT)})
    return NETWORK_POLICY.new(metadata(env, NETWORK_POLICY_NAME, "network-policy"), spec={
        "podSelector": {},
        "policyTypes": ["Ingress"],
        "ingress": rules,
    })


def restore_pods() -> Manifest:
    """The restore Jobs' pods of the operator's environments, wherever they run."""
    return {"namespaceSelector": {"matchLabels": {LABEL_MANAGED_BY: MANAGED_BY}},
            "podSelector": {"matchLabels": {LABEL_NAME: RESTORE_COMPONENT}}}


LINK_LOCAL = ("169.254.0.0/16", "fe80::/10")  # cloud metadata endpoints live here


def egress_policy(env: Environment) -> Manifest:
    """Every pod may reach its own namespace and the cluster DNS (any port: a policy sees
    the DNS pod's own port, after the Service's translation), and the ai-staging
    environments' PostgreSQL (a snapshot's restore; their ingress policy admits only the
    restore's pods); nothing else."""
    dns = {**_namespace(env.egress.dns_namespace),
           "podSelector": {"matchLabels": dict(env.egress.dns_pod_labels)}}
    staging = {"namespaceSelector": {"matchLabels": {LABEL_STAGE: "ai-staging"}},
               "podSelector": {"matchLabels": {LABEL_NAME: POSTGRES_NAME}}}
    return NETWORK_POLICY.new(metadata(env, EGRESS_POLICY_NAME, "network-policy"), spec={
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [
            {"to": [{"podSelector": {}}]},
            {"to": [dns]},
            {"to": [staging], "ports": _tcp(POSTGRES_PORT)},
        ],
    })


def agent_egress_policy(env: Environment) -> Manifest:
    """A DevSlot's agent works with the outside world and the API server: any address but
    link-local ones (cloud metadata) and services.yaml's agentDeniedCIDRs, and the API
    server's addresses when those cover them."""
    denied = (*LINK_LOCAL, *env.egress.agent_denied_cidrs)
    rules: list[Manifest] = [{"to": [
        {"ipBlock": {"cidr": "0.0.0.0/0", "except": [c for c in denied if ":" not in c]}},
        {"ipBlock": {"cidr": "::/0", "except": [c for c in denied if ":" in c]}},
    ]}]
    if env.egress.api_server_cidrs:
        rules.append({"to": [{"ipBlock": {"cidr": c}} for c in env.egress.api_server_cidrs]})
    return NETWORK_POLICY.new(metadata(env, AGENT_EGRESS_POLICY_NAME, "network-policy"), spec={
        "podSelector": {"matchLabels": {LABEL_NAME: "agent"}},
        "policyTypes": ["Egress"],
        "egress": rules,
    })
