"""DevSlots: the slot pool, each slot's environment and agent, and expiry.

Two passes, each safe to repeat and to interrupt (the orphan sweep is ``sweep``):

- ``reconcile_pool`` hands free slot numbers to waiting DevSlots, oldest first. The
  claim is the creation of the ChatEnvironment named after the number: the API
  server lets exactly one creation of a name succeed, so two DevSlots can never
  share a number, whatever runs concurrently. Who holds which number is read
  back from the ChatEnvironments' owner references, never from memory.
- ``reconcile_devslot`` keeps one DevSlot's environment and agent as specified,
  mirrors readiness, and deletes the DevSlot when its TTL has run out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from . import agents
from .builders import slots as b
from .conditions import format_time, get_condition, parse_time, replace_map, set_condition
from .config import ProjectConfig, format_duration, parse_duration
from .constants import (
    ANNOTATION_REFRESHED_AT,
    CHATENV_KIND,
    DEVSLOT_KIND,
    GROUP,
    LABEL_DEVSLOT,
)
from .environment import default_host, default_namespace
from .events import NORMAL, WARNING, event
from .kube import ApiError, Kube, lookup
from .reconcile import Result

log = logging.getLogger(__name__)

CHATENV = lookup(f"{GROUP}/v1alpha1", CHATENV_KIND)
DEVSLOT = lookup(f"{GROUP}/v1alpha1", DEVSLOT_KIND)
NAMESPACE = lookup("v1", "Namespace")

POLL_WHILE_PROVISIONING = 5.0
POLL_FOR_SECRETS = 30.0  # Secrets are not watched (the operator may not list them)


@dataclass
class PoolReport(Result):
    """An allocation pass's result, with the pool's state after it."""

    used: int = 0
    queued: int = 0


def format_precise(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ttl_seconds(devslot: Mapping[str, Any], config: ProjectConfig) -> int:
    text = devslot["spec"].get("ttl")
    return parse_duration(text) if text else config.slots.default_ttl


def last_activity(devslot: Mapping[str, Any]) -> datetime:
    """Creation, or the latest `chatenv touch`, whichever is later."""
    meta = devslot["metadata"]
    created = parse_time(meta.get("creationTimestamp")) or datetime.now(UTC)
    touched = parse_time((meta.get("annotations") or {}).get(ANNOTATION_REFRESHED_AT))
    return max(created, touched) if touched else created


def expires_at(devslot: Mapping[str, Any], config: ProjectConfig) -> datetime:
    return last_activity(devslot) + timedelta(seconds=ttl_seconds(devslot, config))


def owner_uid(obj: Mapping[str, Any], kind: str) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or ():
        if ref.get("kind") == kind and ref.get("apiVersion", "").startswith(f"{GROUP}/"):
            return str(ref["uid"])
    return None


def _patch_status(kube: Kube, devslot: Mapping[str, Any], status: Mapping[str, Any]) -> None:
    """Merge-patch the given status fields, skipping the write when nothing changes."""
    current = devslot.get("status") or {}
    if all(current.get(k) == v for k, v in status.items()):
        return
    try:
        kube.patch_status(DEVSLOT, devslot["metadata"]["name"], status)
    except ApiError as e:
        if e.status != 404:
            raise


def _ready_condition(devslot: Mapping[str, Any], status: bool, reason: str,
                     message: str, now: datetime) -> list[dict[str, Any]]:
    return set_condition((devslot.get("status") or {}).get("conditions") or [], type="Ready",
                         status=status, reason=reason, message=message,
                         generation=devslot["metadata"].get("generation"), now=now)


# ---------------------------------------------------------------------- the pool


def taken_slots(environments: Iterable[Mapping[str, Any]]) -> dict[int, str | None]:
    """Slot number -> uid of the DevSlot holding it (None: held by a hand-made environment).

    An environment being deleted still holds its number until it is gone.
    """
    taken: dict[int, str | None] = {}
    for env in environments:
        spec = env.get("spec") or {}
        if spec.get("stage") == "ai" and spec.get("slot"):
            taken[int(spec["slot"])] = owner_uid(env, DEVSLOT_KIND)
    return taken


def queue_order(devslot: Mapping[str, Any], first_seen: Mapping[str, datetime]) -> tuple[Any, ...]:
    """Creation order. Creation timestamps have one-second resolution; within a second,
    the order in which the operator first saw the objects (their watch order) decides."""
    meta = devslot["metadata"]
    seen = parse_time((devslot.get("status") or {}).get("queuedAt")) or first_seen.get(
        meta["uid"]) or datetime.max.replace(tzinfo=UTC)
    return (meta.get("creationTimestamp", ""), seen, meta["name"])


def reconcile_pool(kube: Kube, config: ProjectConfig, *, first_seen: Mapping[str, datetime],
                   wake: Callable[[str], None], now: datetime | None = None) -> PoolReport:
    """Give free numbers to waiting DevSlots in creation order; report the queue."""
    now = now or datetime.now(UTC)
    devslots = kube.list(DEVSLOT)
    taken = taken_slots(kube.list(CHATENV))
    holders = {uid for uid in taken.values() if uid}
    waiting = sorted(
        (d for d in devslots if not d["metadata"].get("deletionTimestamp")
         and d["spec"].get("mode", "dev") != "repair" and d["metadata"]["uid"] not in holders),
        key=lambda d: queue_order(d, first_seen))
    free = [n for n in range(1, config.slots.max_slots + 1) if n not in taken]
    queued: list[Mapping[str, Any]] = []
    for devslot in waiting:
        slot = _claim(kube, devslot, free)
        if slot is None:
            queued.append(devslot)
            continue
        log.info("devslot %s: took slot %d", devslot["metadata"]["name"], slot)
        kube.events([event(devslot, type=NORMAL, reason="Allocated",
                           message=f"slot {slot} allocated", now=now)])
        wake(devslot["metadata"]["name"])
    for position, entry in enumerate(queued, start=1):
        current = entry.get("status") or {}
        was_queued = current.get("phase") == "Queued"
        message = (f"all {config.slots.max_slots} slots are taken; "
                   f"position {position} in the queue")
        _patch_status(kube, entry, {
            "phase": "Queued",
            "queuePosition": position,
            "queuedAt": current.get("queuedAt") or format_precise(
                first_seen.get(entry["metadata"]["uid"], now)),
            "expiresAt": format_time(expires_at(entry, config)),
            "conditions": _ready_condition(entry, False, "PoolExhausted", message, now),
        })
        if not was_queued:
            kube.events([event(entry, type=NORMAL, reason="PoolExhausted", message=message,
                               now=now)])
    return PoolReport(used=config.slots.max_slots - len(free), queued=len(queued))


def _claim(kube: Kube, devslot: Mapping[str, Any], free: list[int]) -> int | None:
    """Create the slot's ChatEnvironment by name; a 409 means someone else holds that number."""
    preferred: int | None = devslot["spec"].get("slot")
    candidates = ([preferred] if preferred in free else []) + [n for n in free if n != preferred]
    for slot in candidates:
        free.remove(slot)
        if kube.create(b.slot_environment(devslot, slot)) is not None:
            return slot
    return None


# ---------------------------------------------------------------------- one DevSlot


def reconcile_devslot(kube: Kube, devslot: Mapping[str, Any], config: ProjectConfig, *,
                      operator_namespace: str | None, now: datetime | None = None) -> Result:
    now = now or datetime.now(UTC)
    expiry = expires_at(devslot, config)
    if ttl_seconds(devslot, config) > config.slots.max_ttl:
        message = (f"spec.ttl {devslot['spec']['ttl']} exceeds slots.maxTTL "
                   f"{format_duration(config.slots.max_ttl)} of services.yaml")
        _patch_status(kube, devslot, {
            "conditions": _ready_condition(devslot, False, "InvalidSpec", message, now)})
        _post_once(kube, devslot, "InvalidSpec", message, now)
        return Result()
    if now >= expiry:
        return _expire(kube, devslot, now)
    warn_at = expiry - timedelta(seconds=config.slots.expiry_warning)
    expiring = now >= warn_at
    if expiring and not (devslot.get("status") or {}).get("expiryWarned"):
        kube.events([event(devslot, type=WARNING, reason="ExpiringSoon", now=now,
                           message=f"expires at {format_time(expiry)} unless touched "
                                   "(chatenv touch)")])
        _patch_status(kube, devslot, {"expiryWarned": True})
    elif not expiring and (devslot.get("status") or {}).get("expiryWarned"):
        _patch_status(kube, devslot, {"expiryWarned": False})  # touched: warn again later

    next_times = [(expiry - now).total_seconds()]
    if not expiring:
        next_times.append((warn_at - now).total_seconds())
    if devslot["spec"].get("mode") == "repair":
        state = _reconcile_repair(kube, devslot, config, operator_namespace, now)
    else:
        env = _owned_environment(kube, devslot)
        if env is None:
            # Not allocated yet: the pool pass reports the queue and hands out numbers.
            return Result(requeue_after=max(1.0, min(next_times)))
        state = _reconcile_allocated(kube, devslot, env, config, operator_namespace, now)
    status = state.status
    status["expiresAt"] = format_time(expiry)
    status["lastActivity"] = format_time(last_activity(devslot))
    status["observedGeneration"] = devslot["metadata"].get("generation")
    if expiring:
        status["phase"] = "Expiring"
    _patch_status(kube, devslot, status)
    _report(kube, devslot, status, now)
    if not state.ready:
        next_times.append(state.poll)
    return Result(requeue_after=max(0.5, min(next_times)))


def _report(kube: Kube, devslot: Mapping[str, Any], status: Mapping[str, Any],
            now: datetime) -> None:
    """Events and log lines for what changed: Ready, a missing agent secret, the phase."""
    old = devslot.get("status") or {}
    before, after = get_condition(old, "Ready"), get_condition(status, "Ready")
    if after and after["status"] == "True" and (before is None or before["status"] != "True"):
        kube.events([event(devslot, type=NORMAL, reason="Ready", message=after["message"],
                           now=now)])
    if after and after["reason"] in WARNING_REASONS and (
            before is None or (before["reason"], before["message"]) != (after["reason"],
                                                                        after["message"])):
        log.info("%s: %s", after["reason"], after["message"])
        kube.events([event(devslot, type=WARNING, reason=after["reason"],
                           message=after["message"], now=now)])
    if old.get("phase") != status.get("phase"):
        log.info("phase %s -> %s", old.get("phase") or "Pending", status.get("phase"))


def _post_once(kube: Kube, devslot: Mapping[str, Any], reason: str, message: str,
               now: datetime) -> None:
    before = get_condition(devslot.get("status"), "Ready")
    if not before or before.get("message") != message:
        kube.events([event(devslot, type=WARNING, reason=reason, message=message, now=now)])


def _expire(kube: Kube, devslot: Mapping[str, Any], now: datetime) -> Result:
    meta = devslot["metadata"]
    log.info("TTL ran out: deleting the DevSlot and everything it made")
    kube.events([event(devslot, type=NORMAL, reason="Expired", now=now,
                       message="TTL ran out; deleting the slot and everything it made")])
    kube.delete(DEVSLOT, meta["name"], uid=meta["uid"], propagation="Background")
    return Result()


def _owned_environment(kube: Kube, devslot: Mapping[str, Any]) -> Mapping[str, Any] | None:
    uid = devslot["metadata"]["uid"]
    for env in kube.list(CHATENV, label_selector=f"{LABEL_DEVSLOT}={devslot['metadata']['name']}"):
        if owner_uid(env, DEVSLOT_KIND) == uid:
            return env
    return None


@dataclass(frozen=True)
class SlotState:
    """One pass's verdict on a DevSlot: the status to write, and when to look again."""

    ready: bool
    status: dict[str, Any]
    poll: float = POLL_WHILE_PROVISIONING


WARNING_REASONS = frozenset({"AgentSecretMissing"})


def _reconcile_allocated(kube: Kube, devslot: Mapping[str, Any], env: Mapping[str, Any],
                         config: ProjectConfig, operator_namespace: str | None,
                         now: datetime) -> SlotState:
    slot = int(env["spec"]["slot"])
    if not env["metadata"].get("deletionTimestamp"):
        env, _ = kube.ensure(b.slot_environment(devslot, slot))  # overrides follow the DevSlot
    env_status = env.get("status") or {}
    # Known from the slot number before the environment reports them itself.
    namespace = env_status.get("namespace") or default_namespace(config, "ai", slot)
    url = env_status.get("url") or f"https://{default_host(config, 'ai', slot)}"
    env_ready = get_condition(env_status, "Ready")
    # A status written for an older spec (an image just changed) does not count yet.
    current = env_status.get("observedGeneration") == env["metadata"].get("generation")
    env_is_ready = bool(env_ready and env_ready["status"] == "True" and current)
    agent: agents.Agent = agents.NO_AGENT
    if devslot["spec"].get("agent"):
        ns = kube.get(NAMESPACE, namespace)
        agent = (agents.ensure(kube, devslot, namespace, slot, url, operator_namespace)
                 if ns is not None and not ns["metadata"].get("deletionTimestamp")
                 else agents.Agent(False, "agent waiting for the namespace"))
    ready = env_is_ready and agent.ready
    name = env["metadata"]["name"]
    if agent.missing:
        condition = (False, "AgentSecretMissing", agent.missing)
    elif ready:
        extra = "" if devslot["spec"].get("agent") else f"; {agent.note}"
        condition = (True, "Ready", f"slot {slot} ready at {url}{extra}")
    elif env_is_ready:
        condition = (False, "AgentStarting", f"environment ready at {url}; {agent.note}")
    elif env_ready and not current:
        condition = (False, "Provisioning", f"environment {name} is taking the new spec")
    elif env_ready:
        condition = (False, env_ready["reason"], env_ready["message"])
    else:
        condition = (False, "Provisioning", f"environment {name} starting")
    images = {**(env_status.get("images") or {}), **({"agent": agent.image} if agent.image
                                                      else {})}
    status: dict[str, Any] = {
        "slot": slot,
        "environment": name,
        "phase": "Ready" if ready else "Provisioning",
        "queuePosition": None,
        "namespace": namespace,
        "url": url,
        "images": replace_map((devslot.get("status") or {}).get("images"), images),
        "conditions": _ready_condition(devslot, *condition, now),
    }
    return SlotState(ready, status, POLL_FOR_SECRETS if agent.missing else
                     POLL_WHILE_PROVISIONING)


def _reconcile_repair(kube: Kube, devslot: Mapping[str, Any], config: ProjectConfig,
                      operator_namespace: str | None, now: datetime) -> SlotState:
    """No new environment: the agent joins the ai-staging environment's namespace."""
    staging = [e for e in kube.list(CHATENV)
               if (e.get("spec") or {}).get("stage") == "ai-staging"
               and not e["metadata"].get("deletionTimestamp")]
    if len(staging) != 1:
        reason = "NoStagingEnvironment" if not staging else "AmbiguousStagingEnvironment"
        message = (f"repair mode needs exactly one ChatEnvironment of stage ai-staging, "
                   f"found {len(staging)}")
        return SlotState(False, {"phase": "Pending", "conditions": _ready_condition(
            devslot, False, reason, message, now)})
    env = staging[0]
    namespace = (env.get("status") or {}).get("namespace") or default_namespace(
        config, "ai-staging", None)
    url = (env.get("status") or {}).get("url") or (
        f"https://{default_host(config, 'ai-staging', None)}")
    agent: agents.Agent = agents.NO_AGENT
    if devslot["spec"].get("agent"):
        agent = (agents.ensure(kube, devslot, namespace, None, url, operator_namespace)
                 if kube.get(NAMESPACE, namespace) is not None
                 else agents.Agent(False, f"agent waiting for namespace {namespace}"))
    if agent.missing:
        condition = (False, "AgentSecretMissing", agent.missing)
    elif agent.ready:
        condition = (True, "Ready", f"agent working in {namespace}" if agent.image
                     else f"in {namespace}; {agent.note}")
    else:
        condition = (False, "Provisioning", f"in {namespace}: {agent.note}")
    status = {
        "phase": "Ready" if agent.ready else "Provisioning",
        "environment": env["metadata"]["name"],
        "namespace": namespace,
        "url": url,
        "images": replace_map((devslot.get("status") or {}).get("images"),
                              {"agent": agent.image} if agent.image else {}),
        "conditions": _ready_condition(devslot, *condition, now),
    }
    return SlotState(agent.ready, status, POLL_FOR_SECRETS if agent.missing else
                     POLL_WHILE_PROVISIONING)
