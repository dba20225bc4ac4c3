"""One DevSlot: its environment and agent kept as specified, readiness mirrored, expiry.

``reconcile_devslot`` is safe to repeat and to interrupt. The slot number comes from
the pool (``pool``); the orphan sweep is ``sweep``. ``publish`` is the one writer of a
DevSlot's status, and records the Events its changes are worth.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from . import agents
from .builders import slots as b
from .conditions import (
    NORMAL,
    WARNING,
    Reason,
    Type,
    format_time,
    get_condition,
    meaning,
    parse_time,
    read_time,
    replace_map,
    set_condition,
)
from .config import ProjectConfig, format_duration, parse_duration
from .constants import ANNOTATION_REFRESHED_AT, GROUP, LABEL_DEVSLOT
from .environment import default_host, default_namespace
from .events import event
from .kinds import CHATENV, DEVSLOT, NAMESPACE
from .passes import Pass, Result

log = logging.getLogger(__name__)

POLL_WHILE_PROVISIONING = 5.0
POLL_FOR_SECRETS = 30.0  # Secrets are not watched (the operator may not list them)
SKEW = timedelta(seconds=60)
"""How far in the future a `chatenv touch` may be believed (a client's clock ahead)."""

__all__ = ["parse_time"]


def ttl_seconds(devslot: Mapping[str, Any], config: ProjectConfig) -> int:
    """spec.ttl as asked (or the default); ``effective_ttl`` is what expiry uses."""
    text = devslot["spec"].get("ttl")
    return parse_duration(text) if text else config.slots.default_ttl


def effective_ttl(devslot: Mapping[str, Any], config: ProjectConfig) -> int:
    """The TTL expiry counts with: never above slots.maxTTL, whatever spec.ttl says."""
    return min(ttl_seconds(devslot, config), config.slots.max_ttl)


def invalid(devslot: Mapping[str, Any], config: ProjectConfig) -> str | None:
    """Why a DevSlot cannot have a slot (InvalidSpec), or None. It still expires."""
    if ttl_seconds(devslot, config) > config.slots.max_ttl:
        return (f"spec.ttl {devslot['spec']['ttl']} exceeds slots.maxTTL "
                f"{format_duration(config.slots.max_ttl)} of services.yaml")
    return None


def _time(text: Any) -> datetime | None:
    """An RFC 3339 time (UTC when it names no zone), or None for anything else."""
    when = read_time(text)
    return when if when is None or when.tzinfo else when.replace(tzinfo=UTC)


def refreshed_problem(devslot: Mapping[str, Any], now: datetime) -> str | None:
    """What is wrong with the DevSlot's chatenv.dev/refreshed-at, if it is there and wrong:
    not a time, or further in the future than a clock may be off."""
    raw = (devslot["metadata"].get("annotations") or {}).get(ANNOTATION_REFRESHED_AT)
    if raw is None:
        return None
    when = _time(raw)
    if when is None:
        return f"{ANNOTATION_REFRESHED_AT} {str(raw)[:64]!r} is not a time: ignored"
    if when > now + SKEW:
        return (f"{ANNOTATION_REFRESHED_AT} {raw} is in the future: ignored (the TTL counts "
                "from the creation or the last touch before it)")
    return None


def last_activity(devslot: Mapping[str, Any], now: datetime | None = None) -> datetime:
    """Creation, or the latest `chatenv touch`, whichever is later. A touch that is not a
    time, or lies in the future, is not believed: the last activity recorded in the status
    stands instead (never one in the future either), so neither a typo nor a date in 2099
    moves the expiry."""
    now = now or datetime.now(UTC)
    meta = devslot["metadata"]
    created = _time(meta.get("creationTimestamp")) or now
    candidates = [created]
    if refreshed_problem(devslot, now) is None:
        candidates.append(_time((meta.get("annotations") or {}).get(ANNOTATION_REFRESHED_AT))
                          or created)
    else:
        recorded = _time((devslot.get("status") or {}).get("lastActivity"))
        if recorded is not None and recorded <= now + SKEW:
            candidates.append(recorded)
    return max(candidates)


def expires_at(devslot: Mapping[str, Any], config: ProjectConfig,
               now: datetime | None = None) -> datetime:
    return last_activity(devslot, now) + timedelta(seconds=effective_ttl(devslot, config))


def owner_uid(obj: Mapping[str, Any], kind: str) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or ():
        if ref.get("kind") == kind and ref.get("apiVersion", "").startswith(f"{GROUP}/"):
            return str(ref["uid"])
    return None


def ready_condition(devslot: Mapping[str, Any], status: bool, reason: str,
                    message: str, now: datetime) -> list[dict[str, Any]]:
    return set_condition((devslot.get("status") or {}).get("conditions") or [],
                         type=Type.READY, status=status, reason=reason, message=message,
                         generation=devslot["metadata"].get("generation"), now=now)


# ---------------------------------------------------------------------- the status


def publish(p: Pass, devslot: Mapping[str, Any], fields: Mapping[str, Any]) -> None:
    """The one writer of a DevSlot's status: merge-patches ``fields`` when one of them
    changes it, and records the Events the change is worth: Ready, a reason that warns
    (``conditions.REASONS``), joining the queue, the expiry warning."""
    old = devslot.get("status") or {}
    if all(old.get(k) == v for k, v in fields.items()):
        return
    if not p.patch_status(devslot, fields):
        return  # deleted meanwhile
    new = {**old, **fields}
    events = []
    before, after = get_condition(old, Type.READY), get_condition(new, Type.READY)
    said = meaning(after["reason"]) if after else None
    if after and after["status"] == "True" and (before is None or before["status"] != "True"):
        events.append(event(devslot, type=NORMAL, reason=Reason.READY,
                            message=after["message"], now=p.now))
    elif after and said and said.event == WARNING and (before is None or (
            before["reason"], before["message"]) != (after["reason"], after["message"])):
        log.info("%s: %s", after["reason"], after["message"])
        events.append(event(devslot, type=WARNING, reason=after["reason"],
                            message=after["message"], now=p.now))
    if new.get("phase") == "Queued" and old.get("phase") != "Queued" and after:
        events.append(event(devslot, type=NORMAL, reason=Reason.POOL_EXHAUSTED,
                            message=after["message"], now=p.now))
    if new.get("expiryWarned") and not old.get("expiryWarned"):
        events.append(event(devslot, type=WARNING, reason=Reason.EXPIRING_SOON, now=p.now,
                            message=f"expires at {new.get('expiresAt')} unless touched "
                                    "(chatenv touch)"))
    if old.get("phase") != new.get("phase"):
        log.info("phase %s -> %s", old.get("phase") or "Pending", new.get("phase"))
    for i, ev in enumerate(events):  # several events of one pass share a timestamp
        ev["metadata"]["name"] += f"{i}"
    p.events(events)


# ---------------------------------------------------------------------- one DevSlot


def reconcile_devslot(p: Pass, devslot: Mapping[str, Any], config: ProjectConfig, *,
                      operator_namespace: str | None) -> Result:
    now = p.now
    _warn_refreshed(p, devslot)
    expiry = expires_at(devslot, config, now)
    if now >= expiry:
        return _expire(p, devslot)
    problem = invalid(devslot, config)
    if problem:
        # No slot for it (the pool skips it), and it still expires: nothing lives forever.
        publish(p, devslot, {"expiresAt": format_time(expiry), "conditions": ready_condition(
            devslot, False, Reason.INVALID_SPEC, problem, now)})
        return Result(requeue_after=max(1.0, (expiry - now).total_seconds()))
    warn_at = expiry - timedelta(seconds=config.slots.expiry_warning)
    expiring = now >= warn_at
    next_times = [(expiry - now).total_seconds()]
    if not expiring:
        next_times.append((warn_at - now).total_seconds())
    if devslot["spec"].get("mode") == "repair":
        state = _reconcile_repair(p, devslot, config, operator_namespace)
    else:
        env = _owned_environment(p, devslot)
        if env is None:
            # Not allocated yet: the pool pass reports the queue and hands out numbers.
            if expiring or (devslot.get("status") or {}).get("expiryWarned"):
                publish(p, devslot, {"expiryWarned": expiring,
                                     "expiresAt": format_time(expiry)})
            return Result(requeue_after=max(1.0, min(next_times)))
        state = _reconcile_allocated(p, devslot, env, config, operator_namespace)
    status = state.status
    status["expiresAt"] = format_time(expiry)
    status["lastActivity"] = format_time(last_activity(devslot, now))
    status["observedGeneration"] = devslot["metadata"].get("generation")
    status["expiryWarned"] = expiring  # touched: warned again before the new expiry
    if expiring:
        status["phase"] = "Expiring"
    publish(p, devslot, status)
    if not state.ready:
        next_times.append(state.poll)
    return Result(requeue_after=max(0.5, min(next_times)))


def _warn_refreshed(p: Pass, devslot: Mapping[str, Any]) -> None:
    """A Warning Event, once per process and value, for a refreshed-at that is ignored."""
    problem = refreshed_problem(devslot, p.now)
    raw = str((devslot["metadata"].get("annotations") or {}).get(ANNOTATION_REFRESHED_AT))
    uid = devslot["metadata"]["uid"]
    if problem is None or p.memo.known(uid, "refreshed-at", raw):
        return
    log.warning("%s", problem)
    p.events([event(devslot, type=WARNING, reason=Reason.TOUCH_IGNORED, message=problem,
                    now=p.now, suffix=f"{int(p.now.timestamp() * 1e6):x}t")])
    p.memo.learn(uid, "refreshed-at", raw)


def _expire(p: Pass, devslot: Mapping[str, Any]) -> Result:
    log.info("TTL ran out: deleting the DevSlot and everything it made")
    p.events([event(devslot, type=NORMAL, reason=Reason.EXPIRED, now=p.now,
                    message="TTL ran out; deleting the slot and everything it made")])
    p.delete(devslot)
    return Result()


def _owned_environment(p: Pass, devslot: Mapping[str, Any]) -> Mapping[str, Any] | None:
    uid = devslot["metadata"]["uid"]
    for env in p.read_all(CHATENV, labels={LABEL_DEVSLOT: devslot["metadata"]["name"]}):
        if owner_uid(env, DEVSLOT.kind) == uid:
            return env
    return None


@dataclass(frozen=True)
class SlotState:
    """One pass's verdict on a DevSlot: the status to write, and when to look again."""

    ready: bool
    status: dict[str, Any]
    poll: float = POLL_WHILE_PROVISIONING


def _reconcile_allocated(p: Pass, devslot: Mapping[str, Any], env: Mapping[str, Any],
                         config: ProjectConfig, operator_namespace: str | None) -> SlotState:
    slot = int(env["spec"]["slot"])
    if not env["metadata"].get("deletionTimestamp"):
        # Overrides follow the DevSlot; spec.data stays as made (immutable).
        data = ((env.get("spec") or {}).get("data") or {}).get("mode")
        env = p.ensure(b.slot_environment(devslot, slot, data=data))
    env_status = env.get("status") or {}
    # Known from the slot number before the environment reports them itself.
    namespace = env_status.get("namespace") or default_namespace(config, "ai", slot)
    url = env_status.get("url") or f"https://{default_host(config, 'ai', slot)}"
    env_ready = get_condition(env_status, Type.READY)
    # A status written for an older spec (an image just changed) does not count yet.
    current = env_status.get("observedGeneration") == env["metadata"].get("generation")
    env_is_ready = bool(env_ready and env_ready["status"] == "True" and current)
    agent: agents.Agent = agents.NO_AGENT
    if devslot["spec"].get("agent"):
        ns = p.read(NAMESPACE, namespace)
        agent = (agents.ensure(p, devslot, ns, slot, url, operator_namespace,
                                allowed=config.slots.agent_secrets)
                 if ns is not None and not ns["metadata"].get("deletionTimestamp")
                 else agents.Agent(False, "agent waiting for the namespace"))
    ready = env_is_ready and agent.ready
    name = env["metadata"]["name"]
    if agent.missing:
        condition = (False, Reason.AGENT_SECRET_MISSING, agent.missing)
    elif agent.refused:
        condition = (False, Reason.AGENT_SECRET_NOT_ALLOWED, agent.refused)
    elif ready:
        extra = "" if devslot["spec"].get("agent") else f"; {agent.note}"
        condition = (True, Reason.READY, f"slot {slot} ready at {url}{extra}")
    elif env_is_ready:
        condition = (False, Reason.AGENT_STARTING, f"environment ready at {url}; {agent.note}")
    elif env_ready and not current:
        condition = (False, Reason.PROVISIONING, f"environment {name} is taking the new spec")
    elif env_ready:
        condition = (False, env_ready["reason"], env_ready["message"])
    else:
        condition = (False, Reason.PROVISIONING, f"environment {name} starting")
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
        "conditions": ready_condition(devslot, *condition, p.now),
    }
    if env_status.get("data"):  # the data it started with, as its environment reports it
        status["data"] = env_status["data"]
    return SlotState(ready, status, POLL_FOR_SECRETS if agent.missing else
                     POLL_WHILE_PROVISIONING)


def _reconcile_repair(p: Pass, devslot: Mapping[str, Any], config: ProjectConfig,
                      operator_namespace: str | None) -> SlotState:
    """No new environment: the agent joins the ai-staging environment's namespace."""
    staging = [e for e in p.read_all(CHATENV)
               if (e.get("spec") or {}).get("stage") == "ai-staging"
               and not e["metadata"].get("deletionTimestamp")]
    if len(staging) != 1:
        reason = (Reason.NO_STAGING_ENVIRONMENT if not staging
                  else Reason.AMBIGUOUS_STAGING_ENVIRONMENT)
        message = (f"repair mode needs exactly one ChatEnvironment of stage ai-staging, "
                   f"found {len(staging)}")
        return SlotState(False, {"phase": "Pending", "conditions": ready_condition(
            devslot, False, reason, message, p.now)})
    env = staging[0]
    namespace = (env.get("status") or {}).get("namespace") or default_namespace(
        config, "ai-staging", None)
    url = (env.get("status") or {}).get("url") or (
        f"https://{default_host(config, 'ai-staging', None)}")
    agent: agents.Agent = agents.NO_AGENT
    if devslot["spec"].get("agent"):
        ns = p.read(NAMESPACE, namespace)
        agent = (agents.ensure(p, devslot, ns, None, url, operator_namespace,
                                allowed=config.slots.agent_secrets)
                 if ns is not None
                 else agents.Agent(False, f"agent waiting for namespace {namespace}"))
    if agent.missing:
        condition = (False, Reason.AGENT_SECRET_MISSING, agent.missing)
    elif agent.refused:
        condition = (False, Reason.AGENT_SECRET_NOT_ALLOWED, agent.refused)
    elif agent.ready:
        condition = (True, Reason.READY, f"agent working in {namespace}" if agent.image
                     else f"in {namespace}; {agent.note}")
    else:
        condition = (False, Reason.PROVISIONING, f"in {namespace}: {agent.note}")
    status = {
        "phase": "Ready" if agent.ready else "Provisioning",
        "environment": env["metadata"]["name"],
        "namespace": namespace,
        "url": url,
        "images": replace_map((devslot.get("status") or {}).get("images"),
                              {"agent": agent.image} if agent.image else {}),
        "conditions": ready_condition(devslot, *condition, p.now),
    }
    return SlotState(agent.ready, status, POLL_FOR_SECRETS if agent.missing else
                     POLL_WHILE_PROVISIONING)
