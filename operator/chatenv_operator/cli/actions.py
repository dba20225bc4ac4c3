"""What each CLI command does against the cluster, through ``Kube``."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..conditions import format_time
from ..config import parse_duration
from ..constants import (
    ANNOTATION_REFRESHED_AT,
    DATA_CREDENTIALS_SECRET,
    DEVSLOT_KIND,
    GROUP,
    LABEL_PR,
)
from ..kube import Kube, lookup
from .errors import EXIT_NOT_FOUND, EXIT_OK, EXIT_QUEUED, EXIT_TIMEOUT, CliError
from .output import Request, devslot_manifest, expiry_after_touch, summary

DEVSLOT = lookup(f"{GROUP}/v1alpha1", DEVSLOT_KIND)
SECRET = lookup("v1", "Secret")
POLL_SECONDS = 2.0

Sleep = Callable[[float], None]


@dataclass(frozen=True)
class Target:
    """Which DevSlot a command means: an issue, a PR or a slot number (exactly one)."""

    repository: str | None
    issue: int | None = None
    pr: int | None = None
    slot: int | None = None

    def __post_init__(self) -> None:
        if [self.issue, self.pr, self.slot].count(None) != 2:
            raise ValueError("a target is exactly one of issue, pr, slot")

    def matches(self, devslot: Mapping[str, Any]) -> bool:
        spec = devslot.get("spec") or {}
        if self.repository and spec.get("repository") != self.repository:
            return False
        if self.slot is not None:
            return bool((devslot.get("status") or {}).get("slot") == self.slot)
        if self.issue is not None:
            return bool(spec.get("issue") == self.issue)
        return bool(spec.get("pr") == self.pr)

    def describe(self) -> str:
        what = (f"slot {self.slot}" if self.slot is not None
                else f"issue {self.issue}" if self.issue is not None else f"PR {self.pr}")
        return f"{what} of {self.repository}" if self.repository else what


def find(kube: Kube, target: Target) -> list[dict[str, Any]]:
    """Live DevSlots matching the target, on their spec (DevSlots made with kubectl too)."""
    return [d for d in kube.list(DEVSLOT)
            if target.matches(d) and not d["metadata"].get("deletionTimestamp")]


def find_one(kube: Kube, target: Target) -> dict[str, Any]:
    found = find(kube, target)
    if not found:
        raise CliError(f"no DevSlot found for {target.describe()}", EXIT_NOT_FOUND)
    if len(found) > 1:
        names = ", ".join(d["metadata"]["name"] for d in found)
        advice = ("pass --repository" if not target.repository else
                  "there should be one; delete the extra ones with kubectl delete devslot NAME")
        raise CliError(f"several DevSlots match {target.describe()}: {names}; {advice}")
    return found[0]


# ---------------------------------------------------------------------- ensure-slot / -ready


def ensure_slot(kube: Kube, req: Request, *, explicit_mode: bool, allocation_wait: float,
                sleep: Sleep = time.sleep) -> tuple[dict[str, Any], list[str]]:
    """The DevSlot of the request's issue or PR, created when there is none.

    Returns its summary and notes for stderr (options an existing DevSlot ignores).
    """
    existing = find(kube, Target(req.repository, issue=req.issue, pr=req.pr))
    notes: list[str] = []
    if len(existing) > 1:
        find_one(kube, Target(req.repository, issue=req.issue, pr=req.pr))  # raises
    if existing:
        devslot, notes = _update_existing(kube, existing[0], req, explicit_mode)
        created = False
    else:
        manifest = devslot_manifest(req)
        made = kube.create(manifest)
        created = made is not None
        # None: a concurrent ensure-slot created it first.
        devslot = made or kube.get(DEVSLOT, manifest["metadata"]["name"]) or manifest
    # The operator allocates within moments; report the number when it is known.
    deadline = time.monotonic() + allocation_wait
    while not _settled(devslot) and time.monotonic() < deadline:
        sleep(0.5)
        devslot = kube.get(DEVSLOT, devslot["metadata"]["name"]) or devslot
    return summary(devslot, created=created), notes


def _update_existing(kube: Kube, devslot: dict[str, Any], req: Request,
                     explicit_mode: bool) -> tuple[dict[str, Any], list[str]]:
    """Roll the chat image when asked; refuse a different mode; note what is ignored."""
    name, spec = devslot["metadata"]["name"], devslot["spec"]
    current_mode = spec.get("mode", "dev")
    if explicit_mode and req.mode != current_mode:
        raise CliError(f"{name} has mode {current_mode}, not {req.mode}: a DevSlot's mode "
                       "cannot change (delete it with chatenv cleanup, then open a new one)")
    notes = []
    ignored = [flag for flag, given, kept in (
        ("--ttl", req.ttl, spec.get("ttl")), ("--slot", req.slot, spec.get("slot")),
        ("--agent-image", req.agent_image, (spec.get("agent") or {}).get("image")),
        ("--agent-secret", list(req.agent_secrets) or None,
         (spec.get("agent") or {}).get("secretRefs")),
        ("--data", req.data, spec.get("data"))) if given is not None and given != kept]
    if ignored:
        notes.append(f"{name} exists: {', '.join(ignored)} only apply to a new DevSlot "
                     "(chatenv touch extends the TTL)")
    if req.chat_image and (spec.get("images") or {}).get("chat") != req.chat_image:
        devslot = kube.merge_patch(DEVSLOT, name, {"spec": {"images": {"chat": req.chat_image}}})
        notes.append(f"{name}: chat image set to {req.chat_image}")
    return devslot, notes


def _settled(devslot: Mapping[str, Any]) -> bool:
    status = devslot.get("status") or {}
    return bool(status.get("slot") or status.get("namespace") or status.get("phase") == "Queued")


def _current(devslot: Mapping[str, Any]) -> bool:
    """The status describes the latest spec (an image just rolled is not Ready yet)."""
    observed = (devslot.get("status") or {}).get("observedGeneration") or 0
    return bool(observed >= (devslot["metadata"].get("generation") or 0))


def ensure_ready(kube: Kube, req: Request, *, explicit_mode: bool, allocation_wait: float,
                 timeout: str, soft_fail: bool, sleep: Sleep = time.sleep
                 ) -> tuple[dict[str, Any], int, list[str]]:
    """ensure-slot, then wait for Ready; a slot still queued at the timeout stays queued."""
    first, notes = ensure_slot(kube, req, explicit_mode=explicit_mode,
                               allocation_wait=allocation_wait, sleep=sleep)
    if first["phase"] == "Sleeping":
        # Waiting for Ready is asking for it: a sleeping slot is woken, as a visit would.
        touch(kube, Target(req.repository, issue=req.issue, pr=req.pr))
        notes.append(f"{first['name']} was asleep: woken (chatenv touch)")
    deadline = time.monotonic() + parse_duration(timeout)
    while True:
        devslot = kube.get(DEVSLOT, first["name"])
        if devslot is None:
            raise CliError(f"DevSlot {first['name']} was deleted while waiting", EXIT_NOT_FOUND)
        out = summary(devslot, created=first["created"])
        if out["infraReady"] and _current(devslot):
            return out, EXIT_OK, notes
        if time.monotonic() >= deadline:
            break
        sleep(POLL_SECONDS)
    if out["phase"] == "Queued":
        notes.append(f"{first['name']} is still queued (position {out['queuePosition']}) "
                     f"after {timeout}: every slot is taken; it keeps its place")
        return out, EXIT_OK if soft_fail else EXIT_QUEUED, notes
    notes.append(f"{first['name']} not Ready within {timeout} (phase {out['phase']}: "
                 f"{out['message'] or 'no status yet'})")
    return out, EXIT_OK if soft_fail else EXIT_TIMEOUT, notes


# ---------------------------------------------------------------------- the other commands


def set_pr(kube: Kube, *, slot: int, pr: int, repository: str | None) -> dict[str, Any]:
    """Attach a PR to the DevSlot holding ``slot``; a PR belongs to one DevSlot only."""
    devslot = find_one(kube, Target(None, slot=slot))
    name, spec = devslot["metadata"]["name"], devslot["spec"]
    if repository and spec["repository"] != repository:
        raise CliError(f"slot {slot} is held by {name} of {spec['repository']}, not of "
                       f"{repository}", EXIT_NOT_FOUND)
    current = spec.get("pr")
    if current == pr:
        return summary(devslot)
    if current is not None:
        raise CliError(f"{name} already belongs to PR {current}; a DevSlot's PR cannot change")
    holders = [d for d in find(kube, Target(spec["repository"], pr=pr))
               if d["metadata"]["name"] != name]
    if holders:
        other = holders[0]
        where = (other.get("status") or {}).get("slot")
        raise CliError(
            f"PR {pr} of {spec['repository']} is already attached to "
            f"{other['metadata']['name']}{f' (slot {where})' if where else ''}; a PR belongs "
            f"to one DevSlot. Use that one, or release it first: chatenv cleanup --pr {pr} "
            f"--repository {spec['repository']}")
    patched = kube.merge_patch(DEVSLOT, name, {
        "metadata": {"labels": {LABEL_PR: str(pr)}}, "spec": {"pr": pr}})
    return summary(patched)


def touch(kube: Kube, target: Target, now: datetime | None = None) -> dict[str, Any]:
    """Restart the TTL; report the expiry that follows from it."""
    devslot = find_one(kube, target)
    moment = now or datetime.now(UTC)
    when = format_time(moment)
    patched = kube.merge_patch(DEVSLOT, devslot["metadata"]["name"], {
        "metadata": {"annotations": {ANNOTATION_REFRESHED_AT: when}}})
    out = summary(patched)
    out["expiresAt"] = expiry_after_touch(patched, moment)
    out["refreshedAt"] = when
    return out


def credentials(kube: Kube, target: Target) -> dict[str, Any]:
    """The placeholder password of the slot's loaded users, from its namespace's Secret."""
    devslot = find_one(kube, target)
    out = summary(devslot)
    mode = out["data"].get("mode")
    if mode in (None, "empty"):
        raise CliError(f"{out['name']} started with an empty database: there are no loaded "
                       "users (register in the chat)", EXIT_NOT_FOUND)
    secret = kube.get(SECRET, DATA_CREDENTIALS_SECRET, out["namespace"]) if out[
        "namespace"] else None
    if secret is None:
        raise CliError(f"{out['name']} has no credentials yet (its environment is starting): "
                       "try again in a moment", EXIT_NOT_FOUND)
    password = base64.b64decode((secret.get("data") or {}).get("password", "")).decode()
    return {"name": out["name"], "slot": out["slot"], "url": out["url"], "data": out["data"],
            "password": password,
            "login": f"any nickname of the {mode} data, with this password"}


def cleanup(kube: Kube, target: Target) -> dict[str, Any]:
    deleted = []
    for devslot in find(kube, target):
        meta = devslot["metadata"]
        if kube.delete(DEVSLOT, meta["name"], uid=meta["uid"], propagation="Background"):
            deleted.append(meta["name"])
    return {"deleted": deleted}


def list_devslots(kube: Kube, repository: str | None) -> list[dict[str, Any]]:
    return [d for d in kube.list(DEVSLOT)
            if not repository or (d.get("spec") or {}).get("repository") == repository]
