"""An in-memory Kubernetes API for the passes' unit tests.

Implements what a pass sends (``passes.Api``) and what a watch reads
(``watching.Source``) over a dict of objects, with the server-side behaviour the
passes rely on: UIDs, resourceVersions, generations that move with the spec,
server-side apply as one field manager sees it (our fields replaced, the server's
kept), 409 on creating a name that exists, 404 on a missing object, a UID
precondition on delete. Every mutation feeds ``cache`` as a perfect watch would
(set ``watching = False`` to hold the cache back). Every request is logged in
``requests`` as (verb, "Kind/name"), to assert on exactly what a pass sent.

``settle_workloads`` plays the controllers and kwok: workloads report their
replicas ready, an Ingress gets an address.
"""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from chatenv_operator.cache import Store, matches
from chatenv_operator.kinds import (
    DEPLOYMENT,
    INGRESS,
    STATEFULSET,
    WATCHED_KINDS,
    Kind,
    kind_of,
)
from chatenv_operator.kube import ApiError

Manifest = dict[str, Any]
Key = tuple[Kind, str | None, str]
STAMP = "2026-11-26T12:00:00Z"


def _selector(text: str | None) -> dict[str, str]:
    pairs = [p for p in (text or "").split(",") if p]
    return dict(p.split("=", 1) if "=" in p else (p, "") for p in pairs)


class FakeApi:
    def __init__(self, cache: Store | None = None) -> None:
        self.objects: dict[Key, Manifest] = {}
        self.cache = cache if cache is not None else Store()
        self.watching = True
        self.requests: list[tuple[str, str]] = []
        self.events_posted: list[Manifest] = []
        self.refuse: dict[tuple[str, str], ApiError] = {}
        """(verb, Kind/name) -> the error that request gets."""
        self._versions = itertools.count(100)

    # ------------------------------------------------------------------ helpers

    def _key(self, kind: Kind, name: str, namespace: str | None) -> Key:
        return kind, namespace if kind.namespaced else None, name

    def _log(self, verb: str, kind: Kind, name: str) -> None:
        self.requests.append((verb, f"{kind.kind}/{name}"))
        error = self.refuse.get((verb, f"{kind.kind}/{name}"))
        if error is not None:
            raise error

    def _store(self, kind: Kind, obj: Manifest) -> Manifest:
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        self.objects[self._key(kind, obj["metadata"]["name"],
                               obj["metadata"].get("namespace"))] = obj
        if self.watching and kind in WATCHED_KINDS:
            self.cache.put(kind, copy.deepcopy(obj))
        return copy.deepcopy(obj)

    def put(self, obj: Manifest) -> Manifest:
        """Store ``obj`` as if someone else made it (not logged as a request)."""
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("generation", 1)
        meta.setdefault("creationTimestamp", STAMP)
        return self._store(kind_of(obj), obj)

    def edit(self, kind: Kind, name: str, namespace: str | None, change: Mapping[str, Any],
             *, spec: bool = True) -> Manifest:
        """A hand edit (or a controller's status update): ``change`` merged in."""
        obj = self.objects[self._key(kind, name, namespace)]
        _merge(obj, change)
        if spec:
            obj["metadata"]["generation"] = obj["metadata"].get("generation", 1) + 1
        return self._store(kind, obj)

    def remove(self, kind: Kind, name: str, namespace: str | None = None) -> None:
        """Gone, as if deleted by someone else (and collected)."""
        obj = self.objects.pop(self._key(kind, name, namespace))
        if self.watching and kind in WATCHED_KINDS:
            self.cache.remove(kind, obj)

    def find(self, kind: Kind, name: str, namespace: str | None = None) -> Manifest | None:
        return self.objects.get(self._key(kind, name, namespace))

    def all(self, kind: Kind) -> list[Manifest]:
        return [o for (k, _, _), o in self.objects.items() if k == kind]

    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] != "GET"]

    def settle_workloads(self, namespace: str | None = None) -> None:
        """Every workload rolled out and ready, every Ingress admitted."""
        for (kind, ns, _), obj in list(self.objects.items()):
            if namespace and ns != namespace:
                continue
            want = int((obj.get("spec") or {}).get("replicas", 1))
            gen = obj["metadata"].get("generation", 1)
            if kind is DEPLOYMENT:
                status = {"observedGeneration": gen, "replicas": want, "updatedReplicas": want,
                          "availableReplicas": want, "readyReplicas": want}
            elif kind is STATEFULSET:
                status = {"observedGeneration": gen, "replicas": want, "readyReplicas": want,
                          "currentRevision": "r1", "updateRevision": "r1"}
            elif kind is INGRESS:
                status = {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}
            else:
                continue
            if obj.get("status") != status:
                obj["status"] = status
                self._store(kind, obj)

    # ------------------------------------------------------------------ passes.Api

    def get(self, kind: Kind, name: str, namespace: str | None = None) -> Manifest | None:
        self._log("GET", kind, name)
        obj = self.find(kind, name, namespace)
        return copy.deepcopy(obj) if obj is not None else None

    def list(self, kind: Kind, namespace: str | None = None, *,
             label_selector: str | None = None) -> list[Manifest]:
        self._log("LIST", kind, "")
        return self.list_with_version(kind, namespace, label_selector=label_selector,
                                      _log=False)[0]

    def apply_over(self, manifest: Manifest, live: Manifest | None) -> Manifest:
        kind, meta = kind_of(manifest), manifest["metadata"]
        self._log("APPLY", kind, meta["name"])
        held = self.find(kind, meta["name"], meta.get("namespace"))
        if held is None:
            obj = copy.deepcopy(manifest)
            obj["metadata"].update(uid=str(uuid.uuid4()), generation=1,
                                   creationTimestamp=STAMP)
            return self._store(kind, obj)
        obj = copy.deepcopy(held)
        before = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
        for k, v in manifest.items():
            if k == "metadata":
                for field in ("labels", "annotations"):
                    if field in v:
                        obj["metadata"][field] = {**(obj["metadata"].get(field) or {}),
                                                  **copy.deepcopy(v[field])}
                if "ownerReferences" in v:
                    obj["metadata"]["ownerReferences"] = copy.deepcopy(v["ownerReferences"])
            elif k not in ("apiVersion", "kind"):
                obj[k] = copy.deepcopy(v)  # one manager: our fields are the whole body
        if {k: v for k, v in obj.items() if k not in ("metadata", "status")} != before:
            obj["metadata"]["generation"] = obj["metadata"].get("generation", 1) + 1
        return self._store(kind, obj)

    def create(self, manifest: Manifest, *, dry_run: bool = False) -> Manifest | None:
        kind, meta = kind_of(manifest), manifest["metadata"]
        self._log("CREATE?" if dry_run else "CREATE", kind, meta["name"])
        if self.find(kind, meta["name"], meta.get("namespace")) is not None:
            return None
        if dry_run:
            return copy.deepcopy(manifest)
        obj = copy.deepcopy(manifest)
        obj["metadata"].update(uid=str(uuid.uuid4()), generation=1, creationTimestamp=STAMP)
        return self._store(kind, obj)

    def replace(self, manifest: Manifest) -> Manifest | None:
        kind, meta = kind_of(manifest), manifest["metadata"]
        self._log("PUT", kind, meta["name"])
        held = self.find(kind, meta["name"], meta.get("namespace"))
        if held is None:
            raise ApiError(404, "NotFound", f"{kind.kind} {meta['name']} not found")
        if held["metadata"]["resourceVersion"] != meta.get("resourceVersion"):
            return None  # 409: changed since it was read
        obj = copy.deepcopy(manifest)
        obj["metadata"] = {**held["metadata"], **obj["metadata"]}
        return self._store(kind, obj)

    def delete(self, kind: Kind, name: str, namespace: str | None = None, *,
               uid: str | None = None, propagation: str = "Background") -> bool:
        self._log("DELETE", kind, name)
        obj = self.find(kind, name, namespace)
        if obj is None or (uid and obj["metadata"]["uid"] != uid):
            return False
        self.remove(kind, name, namespace)
        return True

    def merge_patch(self, kind: Kind, name: str, patch: Mapping[str, Any],
                    namespace: str | None = None, *,
                    subresource: str | None = None) -> Manifest:
        self._log("PATCH" if subresource is None else f"PATCH/{subresource}", kind, name)
        obj = self.find(kind, name, namespace)
        if obj is None:
            raise ApiError(404, "NotFound", f"{kind.kind} {name} not found")
        _merge(obj, patch)
        return self._store(kind, obj)

    def patch_status(self, kind: Kind, name: str, status: Mapping[str, Any],
                     namespace: str | None = None) -> Manifest:
        return self.merge_patch(kind, name, {"status": dict(status)}, namespace,
                                subresource="status")

    def events(self, items: Iterable[Manifest]) -> None:
        for event in items:
            self.requests.append(("EVENT", event["reason"]))
            self.events_posted.append(event)

    # ------------------------------------------------------------------ watching.Source

    def list_with_version(self, kind: Kind, namespace: str | None = None, *,
                          label_selector: str | None = None,
                          _log: bool = True) -> tuple[list[Manifest], str]:
        if _log:
            self._log("LIST", kind, "")
        wanted = _selector(label_selector)
        items = [copy.deepcopy(o) for (k, ns, _), o in self.objects.items()
                 if k == kind and (namespace is None or ns == namespace)
                 and matches(o["metadata"].get("labels"), wanted)]
        return items, str(next(self._versions))

    def watch(self, kind: Kind, since: str, *,
              label_selector: str | None = None) -> Iterator[Manifest]:
        raise NotImplementedError("use a scripted source for the watch tests")


def _merge(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    """JSON merge patch: maps merge, None deletes, anything else replaces."""
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        elif isinstance(v, Mapping) and isinstance(target.get(k), dict):
            _merge(target[k], v)
        else:
            target[k] = copy.deepcopy(v) if isinstance(v, (dict, list)) else v
