"""Structured logs: one JSON object per line, with the object each line is about.

A reconcile runs with ``bound(controller=..., kind=..., name=...)`` in effect (a
context variable, which ``asyncio.to_thread`` carries into the worker thread),
so every line it logs carries those fields without passing them around. Lines
from kopf about an object carry its kind and name too. The level is Python's
level name (DEBUG, INFO, WARNING, ERROR, CRITICAL).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

_FIELDS: ContextVar[Mapping[str, str]] = ContextVar("chatenv_log_fields",
                                                   default=MappingProxyType({}))
# Explicit extras a line may carry (``name`` is the logger's own attribute: use ``bound``).
EXTRA_FIELDS = ("controller", "kind", "namespace")


@contextlib.contextmanager
def bound(**fields: str) -> Iterator[None]:
    """Add ``fields`` to every line logged in this context (threads started from it too)."""
    token = _FIELDS.set({**_FIELDS.get(), **fields})
    try:
        yield
    finally:
        _FIELDS.reset(token)


def current(name: str) -> str | None:
    """A field bound in this context (the controller a request is sent for, say)."""
    return _FIELDS.get().get(name)


def fields(record: logging.LogRecord) -> dict[str, str]:
    """The object fields of a line: bound ones, kopf's object reference, explicit extras."""
    out = dict(_FIELDS.get())
    ref = getattr(record, "k8s_ref", None)
    if isinstance(ref, Mapping):
        out.update({k: str(v) for k, v in ref.items() if k in ("kind", "name", "namespace") and v})
    for key in EXTRA_FIELDS:
        value = getattr(record, key, None)
        if isinstance(value, str) and value:
            out[key] = value
    return out


class JsonFormatter(logging.Formatter):
    """{"time", "level", "logger", "message", "controller", "kind", "name", ...}."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **fields(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """[time] LEVEL logger kind/name: message (controller)."""

    def format(self, record: logging.LogRecord) -> str:
        f = fields(record)
        about = f"{f['kind']}/{f['name']}: " if "kind" in f and "name" in f else ""
        line = (f"[{self.formatTime(record)}] {record.levelname:<8} {record.name} "
                f"{about}{record.getMessage()}")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure(log_format: str, level: str) -> None:
    """Every handler of the root logger (kopf's included) writes our format."""
    formatter = JsonFormatter() if log_format == "json" else TextFormatter()
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        handler.setFormatter(formatter)
    root.setLevel(level)
