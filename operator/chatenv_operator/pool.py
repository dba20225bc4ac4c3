"""The DevSlot pool: free slot numbers handed to waiting DevSlots, oldest first.

The claim is the creation of the ChatEnvironment named after the number: the API
server lets exactly one creation of a name succeed, so two DevSlots can never share
a number, whatever runs concurrently. Who holds which number is read back from the
ChatEnvironments' owner references, listed from the API (never from memory, nor
from the cache) at every allocation pass. Safe to repeat and to interrupt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import slots
from .builders import slots as b
from .conditions import NORMAL, Reason, format_time
from .config import ProjectConfig
from .events import event
from .kinds import CHATENV, DEVSLOT
from .passes import Pass, Result

log = logging.getLogger(__name__)


@dataclass
class PoolReport(Result):
    """An allocation pass's result, with the pool's state after it."""

    used: int = 0
    queued: int = 0


def format_precise(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def taken_slots(environments: Iterable[Mapping[str, Any]]) -> dict[int, str | None]:
    """Slot number -> uid of the DevSlot holding it (None: held by a hand-made environment).

    An environment being deleted still holds its number until it is gone.
    """
    taken: dict[int, str | None] = {}
    for env in environments:
        spec = env.get("spec") or {}
        if spec.get("stage") == "ai" and spec.get("slot"):
            taken[int(spec["slot"])] = slots.owner_uid(env, DEVSLOT.kind)
    return taken


def queue_order(devslot: Mapping[str, Any], first_seen: Mapping[str, datetime]) -> tuple[Any, ...]:
    """Creation order. Creation timestamps have one-second resolution; within a second,
    the order in which the operator first saw the objects (their watch order) decides."""
    meta = devslot["metadata"]
    seen = slots.parse_time((devslot.get("status") or {}).get("queuedAt")) or first_seen.get(
        meta["uid"]) or datetime.max.replace(tzinfo=UTC)
    return (meta.get("creationTimestamp", ""), seen, meta["name"])


def reconcile_pool(p: Pass, config: ProjectConfig, *, first_seen: Mapping[str, datetime],
                   wake: Callable[[str], None]) -> PoolReport:
    """Give free numbers to waiting DevSlots in creation order; report the queue."""
    devslots = p.api.list(DEVSLOT)
    taken = taken_slots(p.api.list(CHATENV))
    holders = {uid for uid in taken.values() if uid}
    waiting = sorted(
        (d for d in devslots if not d["metadata"].get("deletionTimestamp")
         and d["spec"].get("mode", "dev") != "repair" and d["metadata"]["uid"] not in holders
         and not slots.invalid(d, config)),  # an invalid DevSlot never gets a slot
        key=lambda d: queue_order(d, first_seen))
    free = [n for n in range(1, config.slots.max_slots + 1) if n not in taken]
    queued: list[Mapping[str, Any]] = []
    for devslot in waiting:
        slot = _claim(p, devslot, free, config.slots.data)
        if slot is None:
            queued.append(devslot)
            continue
        log.info("devslot %s: took slot %d", devslot["metadata"]["name"], slot)
        p.events([event(devslot, type=NORMAL, reason=Reason.ALLOCATED,
                        message=f"slot {slot} allocated", now=p.now)])
        wake(devslot["metadata"]["name"])
    for position, entry in enumerate(queued, start=1):
        current = entry.get("status") or {}
        message = (f"all {config.slots.max_slots} slots are taken; "
                   f"position {position} in the queue")
        slots.publish(p, entry, {
            "phase": "Queued",
            "queuePosition": position,
            "queuedAt": current.get("queuedAt") or format_precise(
                first_seen.get(entry["metadata"]["uid"], p.now)),
            "expiresAt": format_time(slots.expires_at(entry, config, p.now)),
            "conditions": slots.ready_condition(entry, False, Reason.POOL_EXHAUSTED, message,
                                                p.now),
        })
    return PoolReport(used=config.slots.max_slots - len(free), queued=len(queued))


def _claim(p: Pass, devslot: Mapping[str, Any], free: list[int], data: str) -> int | None:
    """Create the slot's ChatEnvironment by name; a 409 means someone else holds that number.
    ``data``: what its database starts with unless the DevSlot says (slots.data)."""
    data = devslot["spec"].get("data") or data
    preferred: int | None = devslot["spec"].get("slot")
    candidates = ([preferred] if preferred in free else []) + [n for n in free if n != preferred]
    for slot in candidates:
        free.remove(slot)
        made = p.api.create(b.slot_environment(devslot, slot, data=data))
        if made is not None:
            p.cache.put(CHATENV, made)  # the DevSlot's pass, woken next, finds it
            return slot
    return None
