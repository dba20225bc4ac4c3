"""The operator's watches: list, then watch, per kind, feeding the cache and the queues.

One thread per watched kind (``kinds.WATCHED``), each with one long-lived request,
as a reflector in client-go or kubespawner: it lists the kind (label-selected),
replaces that kind's objects in the ``cache.Store`` with the listing, then watches
from the list's resourceVersion, putting and removing objects as events come.
The server ends each watch every few minutes; the watch resumes where it stopped
(bookmarks keep the resourceVersion fresh). Any error — "410 Gone" (the version
is too old), a refused request, a dropped connection — means the view may have
missed something: after a backoff the kind is listed again and the view replaced,
and objects that vanished meanwhile are reported as deleted. Every change is
handed to ``on_event`` (in this thread: it must hand over, not work).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from .cache import Store
from .kinds import Watch

log = logging.getLogger(__name__)

Manifest = dict[str, Any]
OnEvent = Callable[[Watch, str, Manifest], None]
"""(what is watched, ADDED | MODIFIED | DELETED, the object)."""


class Source(Protocol):
    """What a reflector needs from the API (``kube.Kube`` is one)."""

    def list_with_version(self, kind: Any, namespace: str | None = None, *,
                          label_selector: str | None = None) -> tuple[list[Manifest], str]: ...

    def watch(self, kind: Any, since: str, *,
              label_selector: str | None = None) -> Iterator[Manifest]: ...


class Gone(Exception):
    """The watch's resourceVersion is too old (410): list again."""


@dataclass
class Reflector:
    """Keeps one kind of the ``store`` equal to the API's view of it."""

    source: Source
    what: Watch
    store: Store
    on_event: OnEvent
    min_backoff: float = 0.5
    max_backoff: float = 30.0
    relists: int = 0
    """Listings after the first: how often the watch had to start over."""
    synced: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        """List and watch until ``stop``; never raises."""
        backoff = self.min_backoff
        listed = False
        while not self._stop.is_set():
            try:
                self.relists += listed
                listed = True
                since = self._list()
                backoff = self.min_backoff
                while not self._stop.is_set():
                    since = self._watch(since)
            except Gone:
                log.info("watch of %s: resourceVersion too old, listing again", self.what.kind)
            except Exception as e:  # any failure: the view may be stale, so start over
                if self._stop.is_set():
                    return
                log.warning("watch of %s failed, listing again in %.1fs: %s", self.what.kind,
                            backoff, e)
                self._stop.wait(backoff)
                backoff = min(self.max_backoff, backoff * 2)

    def stop(self) -> None:
        self._stop.set()

    def _list(self) -> str:
        items, version = self.source.list_with_version(self.what.kind,
                                                       label_selector=self.what.selector)
        change = self.store.replace(self.what.kind, items)
        self.synced.set()
        for obj in change.removed:
            self.on_event(self.what, "DELETED", obj)
        for obj in change.changed:
            self.on_event(self.what, "ADDED", obj)
        return version

    def _watch(self, since: str) -> str:
        """One watch request; returns the resourceVersion to resume from."""
        for event in self.source.watch(self.what.kind, since, label_selector=self.what.selector):
            if self._stop.is_set():
                break
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise Gone()
                raise RuntimeError(f"watch error: {obj.get('message') or obj}")
            since = (obj.get("metadata") or {}).get("resourceVersion") or since
            if kind == "BOOKMARK":
                continue
            if kind == "DELETED":
                self.store.remove(self.what.kind, obj)
            elif not self.store.put(self.what.kind, obj):
                continue  # older than what a pass already saw answered
            self.on_event(self.what, str(kind), obj)
        return since


def start(reflectors: list[Reflector]) -> list[threading.Thread]:
    """One daemon thread per reflector: a watch blocked in a read never holds up exit."""
    threads = [threading.Thread(target=r.run, name=f"watch-{r.what.kind.plural}", daemon=True)
               for r in reflectors]
    for t in threads:
        t.start()
    return threads
