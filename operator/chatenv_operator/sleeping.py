"""Sleeping when idle: when an environment goes to sleep, and when it wakes. Pure.

The times come from the ChatEnvironment (its status, its annotations) and, when it
matters, from the chat service (``ask``: the last request any replica recorded, read
by ``activity``); the verdict says whether it sleeps, what its status records, and
when to look again. Nothing here reads a clock or the network.

- It sleeps after ``idle`` seconds without a request, counted from the latest of: the
  last request the chat service recorded, the last wake request (the waker's
  annotation, or a ``chatenv touch`` of its DevSlot), and the moment it last became
  Ready — so a fresh, woken or resumed environment gets a whole window. Only a Ready
  environment counts down; one that is starting or broken never falls asleep.
- Asleep, it stays so until a wake request later than ``sleeping_since`` arrives.
- ``spec.suspended`` set by a person wins: a suspended environment is not asleep (its
  sleep is forgotten), and no wake request starts it.
- A time in the future (a wrong clock, a hand-written annotation) is not believed
  beyond ``SKEW`` seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .conditions import Type, get_condition, read_time
from .constants import ANNOTATION_TOUCHED_AT, ANNOTATION_WAKE_REQUESTED

SKEW = 60.0
RECHECK_UNKNOWN = 60.0
"""Seconds before asking again when the chat service could not say."""


class ActivityUnknown(Exception):
    """The chat service did not answer: unknown is not idle."""


@dataclass(frozen=True)
class Clocks:
    """What the verdict depends on."""

    idle: int | None
    """Seconds without a request before it sleeps; None: never."""
    suspended: bool
    sleeping_since: datetime | None
    """status.sleepingSince."""
    wake_requested: datetime | None
    """The waker's annotation, or the DevSlot's last touch, whichever is later."""
    ready_since: datetime | None
    """When its Ready condition last became True; None while it is not Ready."""
    last_request: datetime | None
    """status.lastRequestAt: the chat service's answer when last asked."""


@dataclass(frozen=True)
class Verdict:
    asleep: bool
    sleeping_since: datetime | None
    last_request: datetime | None
    recheck_after: float | None
    """Seconds until the window could have passed (look again then); None: nothing to wait
    for (never sleeps, asleep, suspended, or not Ready: a status change brings it back)."""


def believable(when: datetime | None, now: datetime) -> datetime | None:
    """``when``, unless it lies further in the future than the clocks can disagree."""
    if when is None or when > now + timedelta(seconds=SKEW):
        return None
    return when


def asleep(c: Clocks, now: datetime) -> bool:
    """Whether the environment sleeps (before asking anyone anything)."""
    if c.idle is None or c.suspended or c.sleeping_since is None:
        return False
    woken = believable(c.wake_requested, now)
    return woken is None or woken <= c.sleeping_since


def idle_since(c: Clocks, now: datetime) -> datetime | None:
    """Since when nobody has used it, as far as the environment's own record goes."""
    if c.ready_since is None:
        return None
    known = [t for t in (believable(c.last_request, now), believable(c.wake_requested, now),
                         c.ready_since) if t is not None]
    return max(known)


def decide(c: Clocks, now: datetime, ask: Callable[[], datetime | None]) -> Verdict:
    """The verdict for ``now``. ``ask`` (called only once the record says the window may
    have passed) returns the chat service's last request, or raises ``ActivityUnknown``."""
    if asleep(c, now):
        return Verdict(True, c.sleeping_since, c.last_request, None)
    since = idle_since(c, now)
    if c.idle is None or c.suspended or since is None:
        return Verdict(False, None, c.last_request, None)
    window = timedelta(seconds=c.idle)
    if now < since + window:
        return Verdict(False, None, c.last_request, (since + window - now).total_seconds())
    try:
        last = ask()
    except ActivityUnknown:
        return Verdict(False, None, c.last_request, min(RECHECK_UNKNOWN, float(c.idle)))
    if last is not None and (c.last_request is None or last > c.last_request):
        c = Clocks(c.idle, c.suspended, c.sleeping_since, c.wake_requested, c.ready_since,
                   last)
    since = idle_since(c, now) or since
    if now < since + window:
        return Verdict(False, None, c.last_request, (since + window - now).total_seconds())
    return Verdict(True, now, c.last_request, None)


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time with its zone (``...Z``), or None for anything else."""
    parsed = read_time(value)
    return parsed if parsed is not None and parsed.tzinfo is not None else None


def clocks(body: Mapping[str, Any], *, idle: int | None, suspended: bool) -> Clocks:
    """The times a ChatEnvironment's body records: its status, the waker's annotation and
    its DevSlot's last touch (whichever is later), and when it last became Ready."""
    status = body.get("status") or {}
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    asked = [t for t in (parse_time(annotations.get(ANNOTATION_WAKE_REQUESTED)),
                         parse_time(annotations.get(ANNOTATION_TOUCHED_AT))) if t]
    ready = get_condition(status, Type.READY) or {}
    return Clocks(
        idle=idle, suspended=suspended,
        sleeping_since=parse_time(status.get("sleepingSince")),
        wake_requested=max(asked) if asked else None,
        ready_since=parse_time(ready.get("lastTransitionTime"))
        if ready.get("status") == "True" else None,
        last_request=parse_time(status.get("lastRequestAt")))
