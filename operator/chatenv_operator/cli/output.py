"""What the CLI creates and prints: DevSlot names and manifests, JSON summaries, the PR or
issue comment, the table. Pure: no I/O here."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..builders.slots import repository_label
from ..conditions import format_time, get_condition, parse_time
from ..config import parse_duration
from ..constants import (
    API_VERSION,
    DEVSLOT_KIND,
    LABEL_ISSUE,
    LABEL_MANAGED_BY,
    LABEL_MODE,
    LABEL_PART_OF,
    LABEL_PR,
    LABEL_REPOSITORY,
    PART_OF,
)


@dataclass(frozen=True)
class Request:
    """What ensure-slot asks for: the DevSlot's identity and, for a new one, its spec."""

    repository: str
    issue: int | None = None
    pr: int | None = None
    mode: str = "dev"
    ttl: str | None = None
    slot: int | None = None
    chat_image: str | None = None
    agent_image: str | None = None
    agent_secrets: tuple[str, ...] = ()
    data: str | None = None
    """empty, fixtures or snapshot; None: services.yaml's slots.data."""


def slug(repository: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", repository.lower()).strip("-")[:40].strip("-")


def devslot_name(repository: str, *, issue: int | None, pr: int | None) -> str:
    """Deterministic: creating it twice is a 409, so ensure-slot cannot make duplicates."""
    suffix = f"issue-{issue}" if issue is not None else f"pr-{pr}"
    return f"{slug(repository)}-{suffix}"


def devslot_manifest(request: Request) -> dict[str, Any]:
    """The DevSlot that ensure-slot creates when there is none."""
    spec: dict[str, Any] = {"repository": request.repository, "mode": request.mode}
    labels = {LABEL_PART_OF: PART_OF, LABEL_REPOSITORY: repository_label(request.repository),
              LABEL_MODE: request.mode, LABEL_MANAGED_BY: "chatenv-cli"}
    if request.issue is not None:
        spec["issue"] = request.issue
        labels[LABEL_ISSUE] = str(request.issue)
    if request.pr is not None:
        spec["pr"] = request.pr
        labels[LABEL_PR] = str(request.pr)
    if request.ttl:
        spec["ttl"] = request.ttl
    if request.slot is not None:
        spec["slot"] = request.slot
    if request.chat_image:
        spec["images"] = {"chat": request.chat_image}
    if request.data:
        spec["data"] = request.data
    if request.agent_image:
        agent: dict[str, Any] = {"image": request.agent_image}
        if request.agent_secrets:
            agent["secretRefs"] = list(request.agent_secrets)
        spec["agent"] = agent
    return {"apiVersion": API_VERSION, "kind": DEVSLOT_KIND,
            "metadata": {"name": devslot_name(request.repository, issue=request.issue,
                                              pr=request.pr),
                         "labels": labels},
            "spec": spec}


def summary(devslot: Mapping[str, Any], *, created: bool | None = None) -> dict[str, Any]:
    """The JSON a workflow reads, with the original CLI's field names."""
    spec, status = devslot["spec"], devslot.get("status") or {}
    ready = get_condition(status, "Ready")
    out: dict[str, Any] = {
        "name": devslot["metadata"]["name"],
        "repository": spec.get("repository"),
        "slot": status.get("slot"),
        "namespace": status.get("namespace"),
        "env": "ai-repair" if spec.get("mode") == "repair" else "ai",
        "environment": status.get("environment"),
        "url": status.get("url"),
        "issue": spec.get("issue"),
        "pr": spec.get("pr"),
        "mode": spec.get("mode", "dev"),
        "phase": status.get("phase", "Pending"),
        "queuePosition": status.get("queuePosition"),
        "expiresAt": status.get("expiresAt"),
        "images": status.get("images") or {},
        # The data it starts with: as its environment reports it, else as asked.
        "data": dict(status.get("data") or {"mode": spec.get("data")}),
        "reason": ready["reason"] if ready else None,
        "message": ready["message"] if ready else None,
        "infraReady": bool(ready and ready["status"] == "True"),
    }
    if created is not None:
        out["created"] = created
    return out


def expiry_after_touch(devslot: Mapping[str, Any], touched: datetime) -> str | None:
    """When a DevSlot touched at ``touched`` expires.

    Its TTL is spec.ttl, or else the operator's default, which the status shows as the
    distance between lastActivity and expiresAt. None when neither is known yet.
    """
    ttl = devslot["spec"].get("ttl")
    if ttl:
        return format_time(touched + timedelta(seconds=parse_duration(ttl)))
    status = devslot.get("status") or {}
    last, expires = parse_time(status.get("lastActivity")), parse_time(status.get("expiresAt"))
    if last is None or expires is None:
        return None
    return format_time(touched.replace(microsecond=0) + (expires - last))


_COMMENT = {
    "en": {"slot": "Slot", "for": "for", "chat": "Chat", "traces": "Traces (Jaeger)",
           "not_ready": "not ready yet", "mode": "Mode", "phase": "phase",
           "expires": "Expires", "extend": "extend with `chatenv touch`",
           "queued": "Queued: position {n} — every slot is taken; the environment and the "
                     "agent start as soon as one frees up"},
    "ru": {"slot": "Слот", "for": "для", "chat": "Чат", "traces": "Трейсы (Jaeger)",
           "not_ready": "ещё не готов", "mode": "Режим", "phase": "состояние",
           "expires": "Истекает", "extend": "продлить: `chatenv touch`",
           "queued": "В очереди: место {n} — все слоты заняты; окружение и агент "  # noqa: RUF001
                     "запустятся, как только слот освободится"},
}


def comment_markdown(devslot: Mapping[str, Any], lang: str) -> str:
    """The comment for the issue or PR: the slot's links, or its place in the queue."""
    s, t = summary(devslot), _COMMENT[lang]
    url = s["url"] or ""
    dash = "—" if lang == "ru" else "-"
    what = f"#{s['pr']}" if s["pr"] else f"#{s['issue']}"
    lines = [f"### {t['slot']} {s['slot'] or dash} {t['for']} {what}", ""]
    if s["phase"] == "Queued":
        lines.append(f"- {t['queued'].format(n=s['queuePosition'] or '?')}")
    lines += [f"- {t['chat']}: {url or t['not_ready']}",
              f"- {t['traces']}: {url}/jaeger" if url else f"- {t['traces']}: {dash}",
              f"- Namespace: `{s['namespace'] or dash}`",
              f"- {t['mode']}: `{s['mode']}`, {t['phase']}: **{s['phase']}**",
              f"- {t['expires']}: {s['expiresAt'] or dash} ({t['extend']})"]
    return "\n".join(lines) + "\n"


def table(devslots: Sequence[Mapping[str, Any]]) -> str:
    rows = [("NAME", "SLOT", "ISSUE", "PR", "MODE", "PHASE", "READY", "EXPIRES", "URL")]
    for d in sorted(devslots, key=lambda d: (d.get("status") or {}).get("slot") or 10**6):
        s = summary(d)
        rows.append((s["name"], str(s["slot"] or "-"), str(s["issue"] or "-"),
                     str(s["pr"] or "-"), s["mode"], s["phase"], str(s["infraReady"]).lower(),
                     s["expiresAt"] or "-", s["url"] or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows) + "\n"
