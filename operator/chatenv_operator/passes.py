"""One reconcile pass: reads from the watch-fed cache, writes through the API.

The ChatEnvironment pass (``reconcile``) and the DevSlot pass (``slots``) both work
through a ``Pass``: it compares what they want with the cache and sends only the
difference (server-side apply, creation of what is made once, deletion with a UID
precondition), writes every answer back into the cache so the next pass sees it,
and keeps the list of what it wrote for the Events. Objects that do not depend on
each other are applied concurrently (``ensure_all``). A pass over objects that are
already as wanted sends no request at all.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from .cache import Store
from .constants import ANNOTATION_SPEC_HASH
from .diffing import up_to_date, with_hash
from .kinds import Kind, key_of, kind_of
from .kube import ApiError

Manifest = dict[str, Any]
T = TypeVar("T")


class Api(Protocol):
    """What a pass sends to the API server (``kube.Kube``; an in-memory one in the tests)."""

    def get(self, kind: Kind, name: str, namespace: str | None = None) -> Manifest | None: ...

    def list(self, kind: Kind, namespace: str | None = None, *,
             label_selector: str | None = None) -> list[Manifest]: ...

    def apply_over(self, manifest: Manifest, live: Manifest | None) -> Manifest: ...

    def create(self, manifest: Manifest, *, dry_run: bool = False) -> Manifest | None: ...

    def delete(self, kind: Kind, name: str, namespace: str | None = None, *,
               uid: str | None = None, propagation: str = "Background") -> bool: ...

    def merge_patch(self, kind: Kind, name: str, patch: Mapping[str, Any],
                    namespace: str | None = None, *,
                    subresource: str | None = None) -> Manifest: ...

    def patch_status(self, kind: Kind, name: str, status: Mapping[str, Any],
                     namespace: str | None = None) -> Manifest: ...

    def events(self, items: Iterable[Manifest]) -> None: ...


Runner = Callable[[Sequence[Callable[[], T]]], list[T]]


def one_by_one(thunks: Sequence[Callable[[], T]]) -> list[T]:
    return [t() for t in thunks]


def concurrently(executor: concurrent.futures.Executor) -> Runner[Any]:
    """Run a pass's independent requests on ``executor``, wait for all, in their order.
    Each runs in a copy of the pass's context (its log fields, the controller counted)."""
    def run(thunks: Sequence[Callable[[], T]]) -> list[T]:
        if len(thunks) < 2:
            return [t() for t in thunks]
        futures = [executor.submit(contextvars.copy_context().run, t) for t in thunks]
        return [f.result() for f in futures]
    return run


class Memo:
    """Facts the watches cannot show (the operator may not list Secrets, nor watch
    volumes), learnt once per process and per owner: a restart learns them again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._facts: dict[str, set[tuple[str, ...]]] = {}

    def known(self, owner: str, *fact: str) -> bool:
        with self._lock:
            return fact in self._facts.get(owner, ())

    def learn(self, owner: str, *fact: str) -> None:
        with self._lock:
            self._facts.setdefault(owner, set()).add(fact)

    def forget(self, owner: str) -> None:
        """The owner is gone: its facts go with it."""
        with self._lock:
            self._facts.pop(owner, None)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(f) for f in self._facts.values())


@dataclass
class Result:
    """What a pass tells the controller to do next with its key."""

    requeue_after: float | None = None
    gone: bool = False
    """The object no longer exists: the controller forgets its key."""


@dataclass(frozen=True)
class Once:
    """Whose object made once is this, and in which incarnation of its namespace (a
    namespace deleted and made again under the same name needs it again)."""

    owner: str
    """The UID of the object the fact belongs to: forgotten with it."""
    scope: str = ""
    """The UID of the namespace the object lives in."""

    def fact(self, manifest: Mapping[str, Any]) -> tuple[str, ...]:
        meta = manifest["metadata"]
        return (self.owner, self.scope, manifest["kind"], meta.get("namespace") or "",
                meta["name"])


@dataclass
class Pass:
    """The state of one reconcile pass, threaded through its steps."""

    api: Api
    cache: Store
    memo: Memo = field(default_factory=Memo)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    run_all: Runner[Any] = one_by_one
    writes: list[str] = field(default_factory=list)
    """What this pass created, changed or deleted, for the Applied Event."""
    live: dict[str, Manifest | None] = field(default_factory=dict)
    """This pass's objects by ``Kind/name``, as the API last showed them."""

    # ------------------------------------------------------------------ reading

    def read(self, kind: Kind, name: str, namespace: str | None = None) -> Manifest | None:
        return self.cache.get(kind, name, namespace)

    def read_all(self, kind: Kind, namespace: str | None = None, *,
                 labels: Mapping[str, str] | None = None) -> list[Manifest]:
        return self.cache.list(kind, namespace, labels=labels)

    # ------------------------------------------------------------------ writing

    def ensure(self, manifest: Manifest) -> Manifest:
        """Apply ``manifest`` unless the live object already says it; returns the object."""
        return self.ensure_all([manifest])[0]

    def ensure_all(self, manifests: Sequence[Manifest], *,
                   once: Sequence[tuple[Once, Manifest]] = ()) -> list[Manifest]:
        """``ensure`` each, and ``create_once`` each of ``once``, the requests concurrently:
        none may depend on another. Writes are recorded in the order given."""
        desired = [with_hash(m) for m in manifests]
        current = [self.cache.get(kind_of(d), d["metadata"]["name"],
                                  d["metadata"].get("namespace")) for d in desired]
        stale = [i for i, (d, c) in enumerate(zip(desired, current, strict=True))
                 if not self.says(d, c)]
        fresh = [(who, m) for who, m in once if not self.memo.known(*who.fact(m))]
        requests: list[Callable[[], Manifest | None]] = [
            *(lambda i=i: self.api.apply_over(desired[i], current[i]) for i in stale),
            *(lambda m=m: self.api.create(m) for _, m in fresh)]
        answers = self.run_all(requests)
        for i, answer in zip(stale, answers, strict=False):
            assert answer is not None
            self.cache.put(kind_of(answer), answer)
            current[i] = answer
            self.writes.append(key_of(desired[i]))
        for (who, m), made in zip(fresh, answers[len(stale):], strict=True):
            if made is not None:
                self.writes.append(key_of(m))
            self.memo.learn(*who.fact(m))
        out = []
        for d, obj in zip(desired, current, strict=True):
            assert obj is not None
            self.live[key_of(d)] = obj
            out.append(obj)
        return out

    def says(self, desired: Manifest, live: Manifest | None) -> bool:
        """``live`` says ``desired`` (a manifest ``with_hash``): compared field by field
        once per version of the live object."""
        if live is None:
            return False
        kind, digest = kind_of(desired), desired["metadata"]["annotations"][ANNOTATION_SPEC_HASH]
        if self.cache.checked(kind, live, digest):
            return True
        if not up_to_date(desired, live):
            return False
        self.cache.mark_checked(kind, live, digest)
        return True

    def create_once(self, who: Once, manifest: Manifest) -> None:
        """Create ``manifest`` unless it exists; never rewritten (a Secret's password
        stays). Remembered (``Once``), so only the first pass of a process asks the API."""
        self.ensure_all([], once=[(who, manifest)])

    def delete(self, obj: Mapping[str, Any]) -> None:
        """Delete this very object (its UID): a successor of the same name is never hit."""
        kind, meta = kind_of(obj), obj["metadata"]
        self.api.delete(kind, meta["name"], meta.get("namespace"), uid=meta.get("uid"))
        self.cache.remove(kind, obj)
        self.writes.append(f"{key_of(obj)} (deleted)")

    def patch_status(self, body: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
        """Merge-patch the status of ``body``'s object; False when it is gone meanwhile."""
        kind, meta = kind_of(body), body["metadata"]
        try:
            answer = self.api.patch_status(kind, meta["name"], status, meta.get("namespace"))
        except ApiError as e:
            if e.status != 404:
                raise
            return False
        self.cache.put(kind, answer)
        return True

    def events(self, items: Iterable[Manifest]) -> None:
        self.api.events(items)

