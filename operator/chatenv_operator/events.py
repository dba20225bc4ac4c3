"""Kubernetes Events about our custom resources. Building is pure; posting is the caller's."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .conditions import NORMAL, WARNING, format_time
from .constants import EVENTS_NAMESPACE, MANAGED_BY

__all__ = ["NORMAL", "WARNING", "event"]


def event(obj: Mapping[str, Any], *, type: str, reason: str, message: str,
          now: datetime | None = None, suffix: str | None = None) -> dict[str, Any]:
    """A core/v1 Event about ``obj``; cluster-scoped objects' events live in `default`."""
    meta = obj["metadata"]
    stamp = (now or datetime.now(UTC))
    when = format_time(stamp)
    namespace = meta.get("namespace") or EVENTS_NAMESPACE
    unique = suffix or f"{int(stamp.timestamp() * 1e6):x}"
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{unique}", "namespace": namespace},
        "involvedObject": {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
                           "name": meta["name"], "uid": meta.get("uid", ""),
                           **({"namespace": meta["namespace"]} if meta.get("namespace") else {})},
        "type": type,
        "reason": reason,
        "message": message[:1024],
        "firstTimestamp": when,
        "lastTimestamp": when,
        "count": 1,
        "source": {"component": MANAGED_BY},
        "reportingComponent": MANAGED_BY,
        "reportingInstance": os.environ.get("POD_NAME") or socket.gethostname(),
    }
