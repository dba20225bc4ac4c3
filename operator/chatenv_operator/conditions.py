"""Status conditions per the Kubernetes API conventions. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

Condition = dict[str, Any]


def format_time(when: datetime) -> str:
    """RFC 3339 in UTC, to the second, as Kubernetes writes timestamps."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> datetime | None:
    """The inverse of ``format_time`` (and of any RFC 3339 timestamp the API returns)."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def now_rfc3339(now: datetime | None = None) -> str:
    return format_time(now or datetime.now(UTC))


def set_condition(conditions: Sequence[Mapping[str, Any]], *, type: str, status: bool | None,
                  reason: str, message: str, generation: int | None,
                  now: datetime | None = None) -> list[Condition]:
    """Return conditions with one replaced; lastTransitionTime moves only when status changes."""
    text = "Unknown" if status is None else ("True" if status else "False")
    previous = next((c for c in conditions if c.get("type") == type), None)
    changed = previous is None or previous.get("status") != text
    since = now_rfc3339(now) if previous is None or changed else previous["lastTransitionTime"]
    new: Condition = {
        "type": type,
        "status": text,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since,
    }
    if generation is not None:
        new["observedGeneration"] = generation
    out = [dict(c) for c in conditions if c.get("type") != type]
    out.append(new)
    order = {"Ready": 0, "Progressing": 1, "Degraded": 2}
    return sorted(out, key=lambda c: (order.get(c["type"], 9), c["type"]))


def get_condition(status: Mapping[str, Any] | None, type: str) -> Mapping[str, Any] | None:
    for c in (status or {}).get("conditions") or ():
        if c.get("type") == type:
            return dict(c)
    return None


def is_true(status: Mapping[str, Any] | None, type: str) -> bool:
    c = get_condition(status, type)
    return bool(c and c.get("status") == "True")


def replace_map(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """What a merge patch must carry to turn map ``old`` into ``new``: new's entries, and
    None (delete) for each key only ``old`` has. Equal to ``new`` once the two agree, so a
    status compared with it stops changing."""
    return {**dict.fromkeys(set(old or {}) - set(new)), **new}
