"""A ChatEnvironment's status and Events: conditions, phase, per-component readiness, the
images that run; written only when they changed, with a log line for what changed the
environment. Pure builders of the status (``summarize``, ``failed``, ``progressing``,
``workloads``, ``changes``), and ``publish``, the one writer of this kind's status.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from . import readiness
from .builders.common import Manifest, selector_labels
from .conditions import (
    NORMAL,
    PROBLEMS,
    WARNING,
    Reason,
    Type,
    get_condition,
    is_true,
    meaning,
    now_rfc3339,
    replace_map,
    set_condition,
)
from .config import format_duration
from .constants import CHAT_NAME, JAEGER_NAME, POSTGRES_NAME, REDIS_NAME
from .environment import Environment
from .events import event
from .passes import Pass
from .sleeping import Verdict as SleepVerdict

log = logging.getLogger(__name__)

WORKLOADS = {"postgres": f"StatefulSet/{POSTGRES_NAME}", "redis": f"Deployment/{REDIS_NAME}",
             "jaeger": f"Deployment/{JAEGER_NAME}", "chat": f"Deployment/{CHAT_NAME}"}


def workloads(env: Environment, live: Mapping[str, Manifest | None],
              components: Mapping[str, readiness.Readiness],
              previous_images: Mapping[str, str]) -> dict[str, Any]:
    """Status fields read from the live workloads: the images that run (a workload still
    rolling out runs its previous image; one scaled to zero runs none), the chat pods, and
    their selector (the scale subresource's)."""
    images: dict[str, str | None] = {}
    for component, key in WORKLOADS.items():
        obj = live.get(key)
        if obj is None or component not in components:
            continue
        if not components[component].ready:
            images[component] = previous_images.get(component)
        elif int(obj["spec"].get("replicas", 1)) > 0:
            images[component] = obj["spec"]["template"]["spec"]["containers"][0]["image"]
    chat = live.get(WORKLOADS["chat"])
    selector = ",".join(f"{k}={v}" for k, v in sorted(selector_labels(env, "chat").items()))
    return {"images": replace_map(previous_images, {k: v for k, v in images.items() if v}),
            "replicas": int(((chat or {}).get("status") or {}).get("replicas", 0)),
            "selector": selector}


Verdict = tuple[bool, Reason, str]
HEALTHY: Verdict = (False, Reason.AS_EXPECTED, "no errors")


def _conditions(old: Mapping[str, Any], generation: int | None, now: datetime | None,
                ready: Verdict, progressing: Verdict, degraded: Verdict) -> list[dict[str, Any]]:
    conds = list(old.get("conditions") or [])
    for type_, (value, reason, message) in ((Type.READY, ready), (Type.PROGRESSING, progressing),
                                            (Type.DEGRADED, degraded)):
        conds = set_condition(conds, type=type_, status=value, reason=reason, message=message,
                              generation=generation, now=now)
    return conds


def failed(old: Mapping[str, Any], generation: int | None, reason: Reason, message: str,
            now: datetime | None, *, namespace: str | None = None,
            url: str | None = None) -> dict[str, Any]:
    status = {**old, "observedGeneration": generation, "phase": "Failed",
              "conditions": _conditions(old, generation, now, (False, reason, message),
                                        (False, reason, "stopped: " + message),
                                        (True, reason, message))}
    if namespace:
        status["namespace"] = namespace
    if url:
        status["url"] = url
    return status


def progressing(old: Mapping[str, Any], env: Environment, generation: int | None,
                 components: Mapping[str, readiness.Readiness], reason: Reason, message: str,
                 now: datetime | None) -> dict[str, Any]:
    return {
        **old,
        "observedGeneration": generation,
        "namespace": env.namespace,
        "url": env.url,
        "phase": "Provisioning",
        "components": {k: v.to_status() for k, v in components.items()} or old.get(
            "components", {}),
        "conditions": _conditions(old, generation, now, (False, reason, message),
                                  (True, reason, message), HEALTHY),
    }


def summarize(old: Mapping[str, Any], env: Environment, generation: int | None,
               components: Mapping[str, readiness.Readiness],
               now: datetime | None) -> dict[str, Any]:
    order = ("postgres", "data", "redis", "jaeger", "chat", "ingress")
    pending = [n for n in order if n in components and not components[n].ready]
    status: dict[str, Any] = {
        **old,
        "observedGeneration": generation,
        "namespace": env.namespace,
        "url": env.url,
        "components": {n: components[n].to_status() for n in order if n in components},
    }
    healthy = HEALTHY
    if env.suspended:
        settled = not pending
        status["phase"] = "Suspended"
        status["conditions"] = _conditions(
            old, generation, now, (False, Reason.SUSPENDED, "suspended: workloads scaled to zero"),
            (not settled, Reason.SUSPENDED, "scaling down" if not settled else "scaled to zero"),
            healthy)
    elif env.sleeping:
        settled = not pending
        status["phase"] = "Sleeping"
        idle = format_duration(env.idle or 0)
        status["conditions"] = _conditions(
            old, generation, now,
            (False, Reason.SLEEPING, f"no request for {idle}: asleep, workloads scaled to zero "
             "and data kept; the next request through its host wakes it"),
            (not settled, Reason.SLEEPING, "scaling down" if not settled else "scaled to zero"),
            healthy)
    elif pending:
        first = pending[0]
        message = "; ".join(f"{n}: {components[n].message}" for n in pending)
        reason = Reason(f"Waiting{first.capitalize()}")
        status["phase"] = "Provisioning"
        status["conditions"] = _conditions(old, generation, now, (False, reason, message),
                                           (True, reason, message), healthy)
    else:
        status["phase"] = "Ready"
        status["conditions"] = _conditions(
            old, generation, now, (True, Reason.READY, f"all components ready at {env.url}"),
            (False, Reason.READY, "rolled out"), healthy)
    return status



def sleep(old: Mapping[str, Any], env: Environment, verdict: SleepVerdict) -> dict[str, Any]:
    """The status fields of sleeping when idle: the window in effect, the last request the
    chat service recorded, and since when it sleeps (removed once it wakes)."""
    out: dict[str, Any] = {"idle": format_duration(env.idle) if env.idle else "never"}
    if verdict.last_request is not None:
        out["lastRequestAt"] = now_rfc3339(verdict.last_request)
    if verdict.asleep and verdict.sleeping_since is not None:
        out["sleepingSince"] = now_rfc3339(verdict.sleeping_since)
    elif "sleepingSince" in old:
        out["sleepingSince"] = None  # a merge patch's removal
    return out


def changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What changed the environment, in words for the log: created, suspended, resumed,
    ready, an image rolled, a spec it cannot realise. Pure."""
    out = []
    before_phase, phase = old.get("phase"), new.get("phase")
    if not before_phase:
        out.append(f"new environment: namespace {new.get('namespace')}, {new.get('url')}")
    elif phase != before_phase:
        out.append("suspended: workloads scaled to zero" if phase == "Suspended" else
                   f"resumed: {phase}" if before_phase == "Suspended" else
                   f"asleep: no request for {new.get('idle')}" if phase == "Sleeping" else
                   f"woken: {phase}" if before_phase == "Sleeping" else
                   f"phase {before_phase} -> {phase}")
    old_images = old.get("images") or {}
    for component, image in sorted((new.get("images") or {}).items()):
        if image and old_images.get(component) and image != old_images[component]:
            out.append(f"{component} image rolled: {old_images[component]} -> {image}")
    before, after = get_condition(old, Type.READY), get_condition(new, Type.READY)
    if after and after["reason"] in PROBLEMS and (
            before is None or (before["reason"], before["message"]) != (after["reason"],
                                                                        after["message"])):
        out.append(f"{after['reason']}: {after['message']}")
    return out


PROGRESS_NOTES = ("components", "replicas")
"""Status fields that move with every step of a rollout."""


def _essentials(status: Mapping[str, Any]) -> dict[str, Any]:
    return {**{k: v for k, v in status.items() if k not in PROGRESS_NOTES},
            "conditions": [{k: v for k, v in c.items() if k != "message"}
                           for c in status.get("conditions") or ()]}


def worth_writing(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether a status write is due: something changed, other than the progress notes of
    an environment still on its way (each component's state, the pods that exist, the
    messages). Those are written with the next change that matters — a condition's
    reason, the phase, a new generation — so a rollout costs a few status writes, not
    one per step of every workload. Pure."""
    if dict(new) == dict(old):
        return False
    if is_true(old, Type.PROGRESSING) and is_true(new, Type.PROGRESSING):
        return _essentials(old) != _essentials(new)
    return True


def events_for(body: Mapping[str, Any], old: Mapping[str, Any], new: Mapping[str, Any],
               writes: list[str], now: datetime | None) -> list[dict[str, Any]]:
    """The Events a change of status records: what was applied, and a Ready condition that
    took a reason worth an Event (``conditions.REASONS``). Pure."""
    events = []
    if writes:
        events.append(event(body, type=NORMAL, reason=Reason.APPLIED, now=now,
                            message="applied " + ", ".join(writes)))
    before, after = get_condition(old, Type.READY), get_condition(new, Type.READY)
    if after is None or (before is not None and (before["status"], before["reason"],
                                                 before["message"]) == (
            after["status"], after["reason"], after["message"])):
        return events
    said = meaning(after["reason"])
    if after["status"] == "True":
        events.append(event(body, type=NORMAL, reason=Reason.READY, message=after["message"],
                            now=now))
    elif is_true(new, Type.DEGRADED):
        events.append(event(body, type=WARNING, reason=after["reason"],
                            message=after["message"], now=now))
    elif said and said.event and (before is None or before["reason"] != after["reason"]):
        events.append(event(body, type=said.event, reason=after["reason"],
                            message=after["message"], now=now))
    for i, ev in enumerate(events):  # several events of one pass share a timestamp
        ev["metadata"]["name"] += f"{i}"
    return events


def publish(p: Pass, body: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    """The one writer of a ChatEnvironment's status: writes it when ``worth_writing``, and
    records the pass's Events (``events_for``)."""
    old = dict(body.get("status") or {})
    if not worth_writing(old, new):
        new = old  # nothing worth saying about the status; the writes still are
    elif not p.patch_status(body, new):
        return  # deleted meanwhile: nothing to report on
    else:
        for change in changes(old, new):
            log.info("%s", change)
    p.events(events_for(body, old, new, p.writes, p.now))
