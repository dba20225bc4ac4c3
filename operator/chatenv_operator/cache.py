"""The operator's in-memory view of the objects it watches. Data only, no I/O.

Fed by the watches (``watching``): a listing replaces one kind's objects whole, each
watch event puts or removes one object. The passes read it instead of the API, and
put back what the API answered to their own writes, so the next pass sees them even
before their watch event arrives. Per object, the newer ``resourceVersion`` wins, so
an event that was already under way cannot undo a write the pass has seen answered.
Thread-safe; the objects it hands out are shared and must not be changed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .kinds import Kind

Manifest = dict[str, Any]
Key = tuple[str | None, str]  # (namespace, name)

# Bulky fields no pass reads: they would take most of the memory per object.
_DROPPED_METADATA = ("managedFields",)


def _slim(obj: Mapping[str, Any]) -> Manifest:
    meta = obj.get("metadata") or {}
    if not any(k in meta for k in _DROPPED_METADATA):
        return dict(obj)
    return {**obj, "metadata": {k: v for k, v in meta.items() if k not in _DROPPED_METADATA}}


def _version(obj: Mapping[str, Any]) -> int | None:
    try:
        return int(obj["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return None


def _key(obj: Mapping[str, Any]) -> Key:
    meta = obj["metadata"]
    return meta.get("namespace"), meta["name"]


def matches(labels: Mapping[str, str] | None, selector: Mapping[str, str]) -> bool:
    """Equality-based label selection: every pair of ``selector`` is on the object."""
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


@dataclass
class Change:
    """What a listing changed in the view: objects new or different, and objects gone."""

    changed: list[Manifest] = field(default_factory=list)
    removed: list[Manifest] = field(default_factory=list)


class Store:
    """Objects by kind, namespace and name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[Kind, dict[Key, Manifest]] = {}
        self._synced: set[Kind] = set()
        self._checked: dict[tuple[Kind, Key], tuple[int | None, str]] = {}

    # ------------------------------------------------------------------ reading

    def get(self, kind: Kind, name: str, namespace: str | None = None) -> Manifest | None:
        with self._lock:
            return self._objects.get(kind, {}).get((namespace if kind.namespaced else None,
                                                    name))

    def list(self, kind: Kind, namespace: str | None = None, *,
             labels: Mapping[str, str] | None = None) -> list[Manifest]:
        """Objects of ``kind`` (in ``namespace``, when given) carrying every label of ``labels``."""
        with self._lock:
            objects = list(self._objects.get(kind, {}).values())
        return [o for o in objects
                if (namespace is None or o["metadata"].get("namespace") == namespace)
                and matches(o["metadata"].get("labels"), labels or {})]

    def synced(self, kind: Kind) -> bool:
        """Whether ``kind`` has been listed once: before that, absence means nothing."""
        with self._lock:
            return kind in self._synced

    def checked(self, kind: Kind, obj: Mapping[str, Any], digest: str) -> bool:
        """Whether this very version of ``obj`` was found to say ``digest``'s manifest."""
        with self._lock:
            return self._checked.get((kind, _key(obj))) == (_version(obj), digest)

    def mark_checked(self, kind: Kind, obj: Mapping[str, Any], digest: str) -> None:
        """Remember that this version of ``obj`` says ``digest``'s manifest, so the next
        pass need not compare it field by field again until it changes."""
        with self._lock:
            self._checked[(kind, _key(obj))] = (_version(obj), digest)

    def sizes(self) -> dict[str, int]:
        with self._lock:
            return {k.kind: len(v) for k, v in self._objects.items()}

    # ------------------------------------------------------------------ feeding

    def put(self, kind: Kind, obj: Mapping[str, Any]) -> bool:
        """Keep ``obj`` unless the view holds a newer version; True when it was kept."""
        slim = _slim(obj)
        key = _key(slim)
        with self._lock:
            objects = self._objects.setdefault(kind, {})
            held = objects.get(key)
            if held is not None:
                new, old = _version(slim), _version(held)
                if new is not None and old is not None and new < old:
                    return False
            objects[key] = slim
            return True

    def remove(self, kind: Kind, obj: Mapping[str, Any]) -> None:
        with self._lock:
            self._objects.get(kind, {}).pop(_key(obj), None)
            self._checked.pop((kind, _key(obj)), None)

    def replace(self, kind: Kind, items: Iterable[Mapping[str, Any]]) -> Change:
        """A fresh listing of ``kind``: the view becomes exactly ``items``."""
        fresh = {_key(o): _slim(o) for o in items}
        change = Change()
        with self._lock:
            before = self._objects.get(kind, {})
            for key, obj in fresh.items():
                held = before.get(key)
                if held is None or _version(held) != _version(obj):
                    change.changed.append(obj)
            change.removed = [o for k, o in before.items() if k not in fresh]
            for k in before.keys() - fresh.keys():
                self._checked.pop((kind, k), None)
            self._objects[kind] = fresh
            self._synced.add(kind)
        return change
