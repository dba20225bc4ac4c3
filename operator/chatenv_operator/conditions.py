"""Status conditions per the Kubernetes API conventions, and their one vocabulary. Pure.

Every condition type and every reason the operator writes (in a condition or an
Event) is a constant here, with what it means and which Event it records; the
reason tables of docs/crds.md are generated from ``REASONS`` (docs/crd_reference.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

Condition = dict[str, Any]


class Type(StrEnum):
    """Condition types."""

    READY = "Ready"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"


class Reason(StrEnum):
    """Reasons of conditions and Events, CamelCase as the API conventions ask."""

    READY = "Ready"
    WAITING_POSTGRES = "WaitingPostgres"
    WAITING_REDIS = "WaitingRedis"
    WAITING_JAEGER = "WaitingJaeger"
    WAITING_CHAT = "WaitingChat"
    WAITING_INGRESS = "WaitingIngress"
    WAITING_DATA = "WaitingData"
    DATA_RESTORE_FAILED = "DataRestoreFailed"
    SUSPENDED = "Suspended"
    SLEEPING = "Sleeping"
    NAMESPACE_TERMINATING = "NamespaceTerminating"
    INVALID_SPEC = "InvalidSpec"
    NAMESPACE_CONFLICT = "NamespaceConflict"
    APPLY_FAILED = "ApplyFailed"
    AS_EXPECTED = "AsExpected"
    APPLIED = "Applied"
    POOL_EXHAUSTED = "PoolExhausted"
    PROVISIONING = "Provisioning"
    AGENT_STARTING = "AgentStarting"
    AGENT_SECRET_MISSING = "AgentSecretMissing"  # noqa: S105 - a reason, not a secret
    AGENT_SECRET_NOT_ALLOWED = "AgentSecretNotAllowed"  # noqa: S105 - a reason
    NO_STAGING_ENVIRONMENT = "NoStagingEnvironment"
    AMBIGUOUS_STAGING_ENVIRONMENT = "AmbiguousStagingEnvironment"
    ALLOCATED = "Allocated"
    EXPIRING_SOON = "ExpiringSoon"
    EXPIRED = "Expired"
    TOUCH_IGNORED = "TouchIgnored"


NORMAL = "Normal"
WARNING = "Warning"
CHATENV, DEVSLOT = "ChatEnvironment", "DevSlot"


@dataclass(frozen=True)
class Meaning:
    """What a reason says, where it is used, and the Event it records (None: no Event)."""

    kinds: tuple[str, ...]
    text: str
    event: str | None = None
    problem: bool = False
    """The spec or the cluster stops the environment: Degraded=True and a Warning Event."""


_WAITING = "a component is not ready yet; the message lists each one and how far it is"
REASONS: dict[Reason, Meaning] = {
    Reason.READY: Meaning((CHATENV, DEVSLOT), "every component (and the agent) is ready; "
                          "the message says where it answers", NORMAL),
    Reason.WAITING_POSTGRES: Meaning((CHATENV,), _WAITING + " (PostgreSQL first)"),
    Reason.WAITING_REDIS: Meaning((CHATENV,), _WAITING + " (Redis first)"),
    Reason.WAITING_JAEGER: Meaning((CHATENV,), _WAITING + " (Jaeger first)"),
    Reason.WAITING_CHAT: Meaning((CHATENV,), _WAITING + " (the chat service first)"),
    Reason.WAITING_INGRESS: Meaning((CHATENV,), _WAITING + " (the Ingress first: no "
                                    "controller has admitted it)"),
    Reason.WAITING_DATA: Meaning(
        (CHATENV, DEVSLOT), "the starting data is not in yet (spec.data snapshot): its "
        "restore runs, or its source is missing, ambiguous, not of stage ai-staging or not "
        "ready (the message says which); the chat service waits, with no pods"),
    Reason.DATA_RESTORE_FAILED: Meaning(
        (CHATENV, DEVSLOT), "the snapshot's restore Job failed three times; the message is "
        "its last words. Nothing of it was written and no chat pod started: fix the cause, "
        "then delete the Job data-restore in the environment's namespace to run it again",
        WARNING, problem=True),
    Reason.SUSPENDED: Meaning((CHATENV,), "spec.suspended: every workload scaled to zero",
                              NORMAL),
    Reason.SLEEPING: Meaning((CHATENV,), "no request for spec.idle: every workload scaled to "
                             "zero, data kept; the next request through its host wakes it",
                             NORMAL),
    Reason.NAMESPACE_TERMINATING: Meaning(
        (CHATENV,), "a namespace of that name is still being deleted (a reused slot "
        "number's); the environment starts once it is gone", NORMAL),
    Reason.INVALID_SPEC: Meaning(
        (CHATENV, DEVSLOT), "the spec passed the schema but cannot be realised (a reserved "
        "namespace, a stage missing from services.yaml, spec.ttl above slots.maxTTL: no "
        "slot, and it still expires after slots.maxTTL); no retries until the spec changes",
        WARNING, problem=True),
    Reason.NAMESPACE_CONFLICT: Meaning(
        (CHATENV,), "the namespace exists and is not this environment's; never adopted, "
        "the message says what to do", WARNING, problem=True),
    Reason.APPLY_FAILED: Meaning((CHATENV,), "the API server refused an object; the message "
                                 "is its answer", WARNING, problem=True),
    Reason.AS_EXPECTED: Meaning((CHATENV,), "Degraded=False: nothing stops the environment"),
    Reason.APPLIED: Meaning((CHATENV,), "Event only: the objects a pass created or changed",
                            NORMAL),
    Reason.POOL_EXHAUSTED: Meaning((DEVSLOT,), "every slot number is taken: queued, with "
                                   "status.queuePosition", NORMAL),
    Reason.PROVISIONING: Meaning((DEVSLOT,), "the slot's environment is starting or taking "
                                 "a new spec"),
    Reason.AGENT_STARTING: Meaning((DEVSLOT,), "the environment is ready, the agent is "
                                   "rolling out"),
    Reason.AGENT_SECRET_MISSING: Meaning(
        (DEVSLOT,), "a Secret of spec.agent.secretRefs is not in the operator's namespace: "
        "the agent waits (looked for every 30 s), the rest of the slot runs", WARNING),
    Reason.AGENT_SECRET_NOT_ALLOWED: Meaning(
        (DEVSLOT,), "a Secret of spec.agent.secretRefs is neither in slots.agentSecrets of "
        "services.yaml nor labelled chatenv.dev/agent-secret=true: nothing is copied, the "
        "agent does not start, the rest of the slot runs", WARNING),
    Reason.NO_STAGING_ENVIRONMENT: Meaning((DEVSLOT,), "repair mode needs the ai-staging "
                                           "environment, and there is none"),
    Reason.AMBIGUOUS_STAGING_ENVIRONMENT: Meaning((DEVSLOT,), "repair mode needs exactly one "
                                                  "ai-staging environment, and there are "
                                                  "several"),
    Reason.ALLOCATED: Meaning((DEVSLOT,), "Event only: the DevSlot took a slot number", NORMAL),
    Reason.EXPIRING_SOON: Meaning((DEVSLOT,), "Event only: the TTL runs out within "
                                  "slots.expiryWarning (chatenv touch extends it)", WARNING),
    Reason.EXPIRED: Meaning((DEVSLOT,), "Event only: the TTL ran out; the operator deletes "
                            "the DevSlot", NORMAL),
    Reason.TOUCH_IGNORED: Meaning((DEVSLOT,), "Event only: chatenv.dev/refreshed-at is not a "
                                  "time, or lies in the future: ignored, the TTL counts from "
                                  "the last activity before it", WARNING),
}
PROBLEMS = frozenset(r for r, m in REASONS.items() if m.problem)


def meaning(reason: str) -> Meaning | None:
    """What a reason found in a status means; None for one not of this vocabulary."""
    try:
        return REASONS.get(Reason(reason))
    except ValueError:
        return None


def format_time(when: datetime) -> str:
    """RFC 3339 in UTC, to the second, as Kubernetes writes timestamps."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> datetime | None:
    """The inverse of ``format_time`` (and of any RFC 3339 timestamp the API returns)."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def read_time(value: Any) -> datetime | None:
    """``parse_time`` of whatever a user or another program left in an annotation or a
    status: None for anything that is not an RFC 3339 time (never raises). The time may
    lack a zone; the caller decides what that means."""
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


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
    order = {Type.READY: 0, Type.PROGRESSING: 1, Type.DEGRADED: 2}
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
