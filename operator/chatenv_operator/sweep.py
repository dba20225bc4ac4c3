"""The orphan sweep: delete what the operator made whose owner is provably gone.

The garbage collector removes what lost its owner through ownerReferences; this is
the backstop for when it has not (it is slow, or not running). An object is judged only
when it carries both the operator's labels *and* an ownerReference to its owner's kind:
a label is easy to put on anything, so a label alone never gets an object deleted (a
hand-made ChatEnvironment labelled as a slot's, a namespace labelled as managed), and
what a person deliberately orphaned (`kubectl delete --cascade=orphan`, which removes the
references) is theirs to delete. Fail-safe: an object is deleted only when a direct read
of the owner its reference names answers 404 (or shows another object of that name),
and only after a grace period, so an error, an empty list or a race with creation never
deletes anything.
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

log = logging.getLogger(__name__)


def sweep(kube: Kube, *, grace: timedelta = timedelta(seconds=30),
          now: datetime | None = None) -> list[str]:
    """Delete slot environments and managed namespaces whose owner is provably gone.

    Judged only with the operator's labels and an ownerReference to the owner's kind;
    deleted only when a direct read of that owner answers 404 (or shows another object
    of that name) after a grace period, so an error, an empty list or a race with
    creation never deletes anything.
    """
    now = now or datetime.now(UTC)
    removed: list[str] = []
    for env in kube.list(CHATENV, label_selector=LABEL_DEVSLOT):
        if _gone(kube, DEVSLOT, env, now, grace):
            kube.delete(CHATENV, env["metadata"]["name"], uid=env["metadata"]["uid"])
            removed.append(f"ChatEnvironment/{env['metadata']['name']}")
    for ns in kube.list(NAMESPACE, label_selector=f"{MANAGED_SELECTOR},{LABEL_ENVIRONMENT}"):
        if _gone(kube, CHATENV, ns, now, grace):
            kube.delete(NAMESPACE, ns["metadata"]["name"], uid=ns["metadata"]["uid"])
            removed.append(f"Namespace/{ns['metadata']['name']}")
    for what in removed:
        log.warning("orphan sweep: deleted %s, whose owner no longer exists", what)
    return removed


def _owner(obj: Mapping[str, Any], kind: Kind) -> Mapping[str, Any] | None:
    """The ownerReference to an object of ``kind`` (of our API group), if there is one."""
    for ref in obj["metadata"].get("ownerReferences") or ():
        if ref.get("kind") == kind.kind and ref.get("apiVersion", "").startswith(
                f"{kind.group}/") and ref.get("name") and ref.get("uid"):
            return ref  # type: ignore[no-any-return]
    return None


def _gone(kube: Kube, owner_kind: Kind, obj: Mapping[str, Any], now: datetime,
          grace: timedelta) -> bool:
    meta = obj["metadata"]
    ref = _owner(obj, owner_kind)
    if meta.get("deletionTimestamp") or ref is None:
        return False  # no reference, no verdict: a label alone deletes nothing
    created = parse_time(meta.get("creationTimestamp"))
    if created is None or now - created < grace:
        return False
    live = kube.get(owner_kind, ref["name"])  # raises on any error other than 404: no deletion
    return live is None or live["metadata"]["uid"] != ref["uid"]

