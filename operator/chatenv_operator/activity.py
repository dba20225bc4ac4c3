"""Asks an environment's chat service when a person last made a request. I/O.

``GET http://chat.<namespace>.svc:<port>/activity`` (the chat Service's ``activity``
port, which only the operator's namespace may reach): the latest request any replica
recorded in PostgreSQL (see chat_service/activity.py). Anything but a clear answer
raises ``ActivityUnknown``: unknown is not idle.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime

from .constants import ACTIVITY_PORT, CHAT_NAME
from .sleeping import ActivityUnknown

TIMEOUT = 3.0


def url(namespace: str) -> str:
    return f"http://{CHAT_NAME}.{namespace}.svc:{ACTIVITY_PORT}/activity"


def last_request(namespace: str, *, timeout: float = TIMEOUT) -> datetime | None:
    """The last request the chat service recorded, or None if it never had one."""
    try:
        with urllib.request.urlopen(url(namespace), timeout=timeout) as resp:  # noqa: S310 - http
            body = json.loads(resp.read(4096))
    except (OSError, ValueError) as e:  # refused, timed out, a 503, not JSON
        raise ActivityUnknown(f"{url(namespace)}: {e}") from None
    value = body.get("lastRequestAt") if isinstance(body, dict) else ...
    if value is None:
        return None
    if not isinstance(value, str):
        raise ActivityUnknown(f"{url(namespace)}: no lastRequestAt in the answer")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ActivityUnknown(f"{url(namespace)}: {value!r} is not a time") from None
    if when.tzinfo is None:
        raise ActivityUnknown(f"{url(namespace)}: {value!r} has no time zone")
    return when
