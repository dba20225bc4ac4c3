"""A DevSlot's agent: its namespace-bound rights, its secret copies, its Deployment, and how
it stands."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from . import readiness
from .builders import slots as b
from .constants import LABEL_AGENT_SECRET
from .kinds import SECRET
from .passes import Once, Pass


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
    refused: str | None = None
    """Why it may not start: a Secret of spec.agent.secretRefs is not one agents may read."""


NO_AGENT = Agent(True, "no agent: spec.agent is not set")


def ensure(p: Pass, devslot: Mapping[str, Any], namespace: Mapping[str, Any], slot: int | None,
           url: str, operator_namespace: str | None, *, allowed: Collection[str] = ()) -> Agent:
    """ServiceAccount, RoleBinding (this namespace only), secret copies, Deployment.

    Only a Secret named in ``allowed`` (slots.agentSecrets) or labelled
    chatenv.dev/agent-secret=true is copied: the agent's image is the DevSlot author's
    choice. A missing or refused secret holds the Deployment back (its pods could not
    start without it) and is reported, not raised: nothing is wrong with the operator,
    and retrying at once would not help. Secrets are not watched: each original is read
    once per process, in the operator's own namespace only; the copy is created, and a
    409 says it is already there.
    """
    name = namespace["metadata"]["name"]
    who = Once(devslot["metadata"]["uid"], namespace["metadata"].get("uid", ""))
    p.ensure_all([b.agent_service_account(devslot, name), b.agent_role_binding(devslot, name)])
    for source in devslot["spec"]["agent"].get("secretRefs") or ():
        copy = b.agent_secret(devslot, name, source, {})
        if p.memo.known(*who.fact(copy)):
            continue
        original = p.api.get(SECRET, source, operator_namespace) if operator_namespace else None
        if original is None:
            where = (f"namespace {operator_namespace}" if operator_namespace
                     else "the operator's namespace (CHATENV_NAMESPACE is not set)")
            return Agent(False, "agent waiting for its secret", missing=(
                f"agent secret {source} not found in {where}: create it there; the agent "
                "starts once it exists"))
        labels = original["metadata"].get("labels") or {}
        if source not in allowed and labels.get(LABEL_AGENT_SECRET) != "true":
            return Agent(False, "agent held back", refused=(
                f"agent secret {source} may not be given to agents: it is not in "
                f"slots.agentSecrets of services.yaml and not labelled "
                f"{LABEL_AGENT_SECRET}=true; nothing was copied"))
        p.create_once(who, b.agent_secret(devslot, name, source, original.get("data") or {}))
    deployment = p.ensure(b.agent_deployment(devslot, name, slot=slot, url=url))
    state = readiness.deployment(deployment)
    if not state.ready:
        return Agent(False, f"agent starting ({state.message})")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    return Agent(True, "agent running", image=image)
