"""A DevSlot's agent: its namespace-bound rights, its secret copies, its Deployment, and how
it stands."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import readiness
from .builders import slots as b
from .kube import Kube, lookup

SECRET = lookup("v1", "Secret")


@dataclass(frozen=True)
class Agent:
    """How a slot's agent stands."""

    ready: bool
    note: str
    """For the Ready message."""
    image: str | None = None
    """The image that runs, once rolled out."""
    missing: str | None = None
    """Why it cannot start: a Secret of spec.agent.secretRefs does not exist."""


NO_AGENT = Agent(True, "no agent: spec.agent is not set")


def ensure(kube: Kube, devslot: Mapping[str, Any], namespace: str, slot: int | None,
           url: str, operator_namespace: str | None) -> Agent:
    """ServiceAccount, RoleBinding (this namespace only), secret copies, Deployment.

    A missing secret holds the Deployment back (its pods could not start without it) and
    is reported, not raised: nothing is wrong with the operator, and retrying at once
    would not help.
    """
    kube.ensure(b.agent_service_account(devslot, namespace))
    kube.ensure(b.agent_role_binding(devslot, namespace))
    for source in devslot["spec"]["agent"].get("secretRefs") or ():
        if kube.get(SECRET, b.agent_secret_name(devslot, source), namespace) is not None:
            continue
        original = kube.get(SECRET, source, operator_namespace) if operator_namespace else None
        if original is None:
            where = (f"namespace {operator_namespace}" if operator_namespace
                     else "the operator's namespace (CHATENV_NAMESPACE is not set)")
            return Agent(False, "agent waiting for its secret", missing=(
                f"agent secret {source} not found in {where}: create it there; the agent "
                "starts once it exists"))
        kube.create(b.agent_secret(devslot, namespace, source, original.get("data") or {}))
    deployment, _ = kube.ensure(b.agent_deployment(devslot, namespace, slot=slot, url=url))
    state = readiness.deployment(deployment)
    if not state.ready:
        return Agent(False, f"agent starting ({state.message})")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    return Agent(True, "agent running", image=image)
