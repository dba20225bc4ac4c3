"""What the waker answers for one request: the environment's state, then a page or JSON.

Pure: ``view`` reads a ChatEnvironment body, ``answer`` decides (and says whether to ask
for a wake) and renders. No I/O.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from ..constants import ANNOTATION_WAKE_REQUESTED
from ..sleeping import parse_time

# A browser reloads the waking page this often; API clients are told to retry after it.
RELOAD_SECONDS = 3
# A suspended environment does not wake by itself: ask clients to come back much later.
SUSPENDED_RETRY_SECONDS = 60
# Requests that browsers make by themselves, not a person: an open tab's live-update stream
# reconnecting, or a page's background polling that says so. They never wake anything.
BACKGROUND_PATHS = ("/api/events",)
BACKGROUND_HEADER = "X-Chat-Background"


class State(Enum):
    UNKNOWN = "unknown"
    """No environment has this host."""
    SUSPENDED = "suspended"
    """spec.suspended: true, set by a person: a visit does not wake it."""
    SLEEPING = "sleeping"
    """Asleep after its idle window; the next visit wakes it."""
    WAKING = "waking"
    """Awake (or asked to wake), its chat pods not available yet."""


@dataclass(frozen=True)
class EnvView:
    """What the waker needs to know of one ChatEnvironment."""

    name: str
    host: str
    suspended: bool
    sleeping_since: datetime | None
    wake_requested_at: datetime | None
    message: str
    """Its Ready condition's message (how far along it is)."""

    @property
    def state(self) -> State:
        if self.suspended:
            return State.SUSPENDED
        if self.sleeping_since is not None and (
                self.wake_requested_at is None or self.wake_requested_at <= self.sleeping_since):
            return State.SLEEPING
        return State.WAKING


def view(body: Mapping[str, Any]) -> EnvView | None:
    """The waker's view of a ChatEnvironment; None until the operator has given it a URL."""
    meta, spec = body.get("metadata") or {}, body.get("spec") or {}
    status = body.get("status") or {}
    url = status.get("url")
    host = spec.get("host") or (urlsplit(url).hostname if isinstance(url, str) else None)
    if not host or not meta.get("name"):
        return None
    ready: Mapping[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    return EnvView(
        name=meta["name"], host=host.lower(), suspended=bool(spec.get("suspended")),
        sleeping_since=parse_time(status.get("sleepingSince")),
        wake_requested_at=parse_time((meta.get("annotations") or {}).get(
            ANNOTATION_WAKE_REQUESTED)),
        message=str(ready.get("message") or ""))


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: str
    headers: Mapping[str, str]
    state: State
    wake: bool
    """Whether to ask the operator to wake the environment."""


def is_background(path: str, headers: Mapping[str, str]) -> bool:
    """A request no person made: it must not wake anything."""
    return path.startswith(BACKGROUND_PATHS) or headers.get(BACKGROUND_HEADER, "") == "1"


def answer(env: EnvView | None, path: str, headers: Mapping[str, str]) -> Answer:
    """The answer to a request for ``path`` on an environment's host."""
    state = env.state if env is not None else State.UNKNOWN
    wake = state is State.SLEEPING and not is_background(path, headers)
    retry = SUSPENDED_RETRY_SECONDS if state is State.SUSPENDED else RELOAD_SECONDS
    status = 404 if state is State.UNKNOWN else 503
    common = {"Cache-Control": "no-store", "X-Chatenv-State": state.value}
    if state is not State.UNKNOWN:
        common["Retry-After"] = str(retry)
    if path == "/api" or path.startswith("/api/"):
        body = json.dumps({"error": _sentence(env, state, wake), "code": state.value})
        return Answer(status, "application/json", body, common, state, wake)
    headers_out = {**common, "Content-Security-Policy":
                   "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
                   "frame-ancestors 'none'"}
    return Answer(status, "text/html", _page(env, state, wake), headers_out, state, wake)


def _sentence(env: EnvView | None, state: State, wake: bool) -> str:
    if env is None:
        return "no environment answers at this address"
    if state is State.SUSPENDED:
        return (f"environment {env.name} is suspended (spec.suspended: true): a request does "
                "not wake it")
    if state is State.SLEEPING and not wake:
        return (f"environment {env.name} is asleep; this request does not wake it (open the "
                "page to wake it)")
    return f"environment {env.name} is waking up; retry in a few seconds"


def _page(env: EnvView | None, state: State, wake: bool) -> str:
    if env is None:
        title, text, reload = "No environment here", "<p>No environment answers at this " \
            "address.</p>", False
    elif state is State.SUSPENDED:
        name = html.escape(env.name)
        title = f"{env.name} is suspended"
        text = (f"<p><strong>{name}</strong> is suspended: someone set "
                "<code>spec.suspended: true</code>, and a visit does not wake it.</p>"
                "<p>Whoever manages it can resume it:</p><pre>kubectl patch chatenv "
                f"{name} --type=merge -p '{{\"spec\":{{\"suspended\":false}}}}'</pre>")
        reload = False
    else:
        name = html.escape(env.name)
        title = f"{env.name} is waking up"
        asleep = state is State.SLEEPING and not wake
        first = ("is asleep; open this page to wake it." if asleep else
                 "was asleep after a while without visitors and is waking up now.")
        progress = f"<p class=m>{html.escape(env.message)}</p>" if env.message else ""
        text = (f"<p><strong>{name}</strong> {first}</p><p>This page reloads by itself and "
                f"shows the chat as soon as it is ready, usually within 20 seconds.</p>"
                f"{progress}")
        reload = True
    refresh = f'<meta http-equiv="refresh" content="{RELOAD_SECONDS}">' if reload else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">{refresh}'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>body{{font:16px/1.5 system-ui,"
            "sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222}"
            "pre{background:#f4f4f4;padding:.6em;overflow-x:auto}.m{color:#666}</style>"
            f"</head><body><h1>{html.escape(title)}</h1>{text}</body></html>\n")
