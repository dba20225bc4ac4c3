"""The environments the waker knows, kept current by a watch, and the wake requests it sends.

I/O: ``KubeApi`` talks to the API server (list and watch ChatEnvironments, set one
annotation); ``Directory`` keeps what the watch says in memory, by host, in a thread of
its own, and sends a wake request at most once per sleep.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from ..constants import ANNOTATION_WAKE_REQUESTED, CHATENV_PLURAL, GROUP, VERSION
from .pages import EnvView, view

log = logging.getLogger("chatenv.waker")

WATCH_SECONDS = 300
RETRY_SECONDS = 2.0


class Api(Protocol):
    """What the waker needs from the API server."""

    def list(self) -> tuple[list[dict[str, Any]], str]:
        """Every ChatEnvironment, and the list's resourceVersion."""

    def watch(self, resource_version: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(event type, object) from that version on, until the watch ends."""

    def annotate(self, name: str, key: str, value: str) -> None:
        """Set one annotation of a ChatEnvironment (a merge patch of its metadata)."""


class KubeApi:
    """``Api`` through the Kubernetes client: in-cluster credentials, else $KUBECONFIG."""

    def __init__(self) -> None:
        from kubernetes import client, config

        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException:
            config.load_kube_config()  # type: ignore[no-untyped-call]
        self._custom = client.CustomObjectsApi()

    def list(self) -> tuple[list[dict[str, Any]], str]:
        found: Any = self._custom.list_cluster_custom_object(GROUP, VERSION, CHATENV_PLURAL)
        return list(found["items"]), str(found["metadata"]["resourceVersion"])

    def watch(self, resource_version: str) -> Iterator[tuple[str, dict[str, Any]]]:
        from kubernetes import watch

        for event in watch.Watch().stream(  # type: ignore[no-untyped-call]
                self._custom.list_cluster_custom_object, GROUP, VERSION, CHATENV_PLURAL,
                resource_version=resource_version, timeout_seconds=WATCH_SECONDS,
                allow_watch_bookmarks=True):
            yield str(event["type"]), dict(event["object"])

    def annotate(self, name: str, key: str, value: str) -> None:
        self._custom.patch_cluster_custom_object(
            GROUP, VERSION, CHATENV_PLURAL, name, {"metadata": {"annotations": {key: value}}},
            _content_type="application/merge-patch+json")


class Directory:
    """Host -> the environment's view, as the watch last said."""

    def __init__(self, api: Api, clock: Callable[[], float] = time.time) -> None:
        self._api = api
        self._clock = clock
        self._lock = threading.Lock()
        self._by_name: dict[str, EnvView] = {}
        self.synced = threading.Event()
        """Set once the first list arrived (the waker is ready)."""

    def lookup(self, host: str) -> EnvView | None:
        """The environment answering at ``host`` (without a port; any case)."""
        host = host.lower()
        with self._lock:
            return next((v for v in self._by_name.values() if v.host == host), None)

    def replace_all(self, items: Sequence[Mapping[str, Any]]) -> None:
        views = [v for v in (view(item) for item in items) if v is not None]
        with self._lock:
            self._by_name = {v.name: v for v in views}

    def apply(self, kind: str, body: Mapping[str, Any]) -> None:
        """One watch event."""
        name = (body.get("metadata") or {}).get("name")
        seen = view(body)
        with self._lock:
            if kind == "DELETED" or seen is None:
                self._by_name.pop(str(name), None)
            else:
                self._by_name[seen.name] = seen

    async def wake(self, env: EnvView) -> bool:
        """Ask the operator to wake ``env`` (once: the view then says a wake is asked)."""
        now = datetime.fromtimestamp(self._clock(), UTC).replace(microsecond=0)
        if env.sleeping_since is not None:
            # A clock behind the operator's must not ask for a wake "before" the sleep.
            now = max(now, env.sleeping_since + timedelta(seconds=1))
        stamp = now.isoformat().replace("+00:00", "Z")
        try:
            await asyncio.to_thread(self._api.annotate, env.name, ANNOTATION_WAKE_REQUESTED,
                                    stamp)
        except Exception as e:  # any failure: the page reloads and asks again
            log.warning("could not ask to wake chatenv %s: %s", env.name,
                        getattr(e, "reason", None) or type(e).__name__)
            return False
        log.info("asked to wake chatenv %s (asleep since %s)", env.name,
                 env.sleeping_since.isoformat() if env.sleeping_since else "?")
        with self._lock:
            current = self._by_name.get(env.name)
            if current is not None:
                self._by_name[env.name] = _replace_wake(current, now)
        return True

    def run(self, stop: threading.Event) -> None:
        """List, then watch, again and again, until ``stop`` is set (a thread's body)."""
        while not stop.is_set():
            try:
                items, version = self._api.list()
                self.replace_all(items)
                self.synced.set()
                for kind, body in self._api.watch(version):
                    if kind == "ERROR":
                        break  # e.g. 410 Gone: list again
                    if kind != "BOOKMARK":
                        self.apply(kind, body)
                    if stop.is_set():
                        return
            except Exception as e:  # keep watching whatever happened
                log.warning("watching ChatEnvironments failed (%s); retrying",
                            getattr(e, "reason", None) or type(e).__name__)
                stop.wait(RETRY_SECONDS)


def _replace_wake(env: EnvView, when: datetime) -> EnvView:
    from dataclasses import replace

    return replace(env, wake_requested_at=when)
