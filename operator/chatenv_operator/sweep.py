"""The orphan sweep: delete what the operator made whose owner is provably gone.

The garbage collector removes what lost its owner through ownerReferences; this
catches what it cannot see (a `kubectl delete --cascade=orphan`, an owner removed
while its dependents lost their references). Fail-safe: an object is deleted only
when a direct read of its owner answers 404 (or shows another object of that
name), and only after a grace period, so an error, an empty list or a race with
creation never deletes anything.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from .conditions import parse_time
from .constants import LABEL_DEVSLOT, LABEL_ENVIRONMENT, MANAGED_SELECTOR
from .kinds import CHATENV, DEVSLOT, NAMESPACE, Kind
from .kube import Kube
from .slots import owner_uid

log = logging.getLogger(__name__)


def sweep(kube: Kube, *, grace: timedelta = timedelta(seconds=30),
          now: datetime | None = None) -> list[str]:
    """Delete managed namespaces and slot environments whose owner is provably gone.

    Fail-safe: an object is deleted only when a direct read of its owner answers
    404 (or shows another object of that name), and only after a grace period, so
    an error, an empty list or a race with creation never deletes anything.
    """
    now = now or datetime.now(UTC)
    removed: list[str] = []
    for env in kube.list(CHATENV, label_selector=LABEL_DEVSLOT):
        owner = env["metadata"]["labels"].get(LABEL_DEVSLOT, "")
        uid = owner_uid(env, DEVSLOT.kind)
        if _gone(kube, DEVSLOT, owner, uid, env, now, grace):
            kube.delete(CHATENV, env["metadata"]["name"], uid=env["metadata"]["uid"])
            removed.append(f"ChatEnvironment/{env['metadata']['name']}")
    for ns in kube.list(NAMESPACE, label_selector=f"{MANAGED_SELECTOR},{LABEL_ENVIRONMENT}"):
        owner = ns["metadata"]["labels"].get(LABEL_ENVIRONMENT, "")
        uid = owner_uid(ns, CHATENV.kind)
        if _gone(kube, CHATENV, owner, uid, ns, now, grace):
            kube.delete(NAMESPACE, ns["metadata"]["name"], uid=ns["metadata"]["uid"])
            removed.append(f"Namespace/{ns['metadata']['name']}")
    for what in removed:
        log.warning("orphan sweep: deleted %s, whose owner no longer exists", what)
    return removed


def _gone(kube: Kube, owner_kind: Kind, owner: str, uid: str | None, obj: Mapping[str, Any],
          now: datetime, grace: timedelta) -> bool:
    meta = obj["metadata"]
    if meta.get("deletionTimestamp") or not owner:
        return False
    created = parse_time(meta.get("creationTimestamp"))
    if created is None or now - created < grace:
        return False
    live = kube.get(owner_kind, owner)  # raises on any error other than 404: no deletion
    if live is None:
        return True
    return uid is not None and live["metadata"]["uid"] != uid

