"""The operator's only door to the Kubernetes API.

Plain dictionaries in and out (the builders produce them), server-side apply
under one field manager, and a compare-before-write ``ensure`` so that a
reconcile that changes nothing sends no write requests. Transient failures
(429, 5xx, timeouts, dropped connections) are retried here with exponential
backoff; everything else surfaces as ``ApiError`` with the server's message.
Every request is counted by verb and status code, for the metrics endpoint and the tests.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from .constants import ANNOTATION_SPEC_HASH, FIELD_MANAGER

log = logging.getLogger(__name__)

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    api_version: str
    kind: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name:
            base += f"/{quote(name, safe='')}"
        return base


KINDS: dict[tuple[str, str], Kind] = {
    (k.api_version, k.kind): k
    for k in (
        Kind("v1", "Namespace", "namespaces", False),
        Kind("v1", "ConfigMap", "configmaps", True),
        Kind("v1", "Secret", "secrets", True),
        Kind("v1", "Service", "services", True),
        Kind("v1", "ServiceAccount", "serviceaccounts", True),
        Kind("v1", "PersistentVolumeClaim", "persistentvolumeclaims", True),
        Kind("v1", "PersistentVolume", "persistentvolumes", False),
        Kind("v1", "ResourceQuota", "resourcequotas", True),
        Kind("v1", "LimitRange", "limitranges", True),
        Kind("v1", "Event", "events", True),
        Kind("v1", "Pod", "pods", True),
        Kind("apps/v1", "Deployment", "deployments", True),
        Kind("apps/v1", "StatefulSet", "statefulsets", True),
        Kind("batch/v1", "Job", "jobs", True),
        Kind("networking.k8s.io/v1", "Ingress", "ingresses", True),
        Kind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", True),
        Kind("rbac.authorization.k8s.io/v1", "Role", "roles", True),
        Kind("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", True),
        Kind("chatenv.dev/v1alpha1", "ChatEnvironment", "chatenvironments", False),
        Kind("chatenv.dev/v1alpha1", "DevSlot", "devslots", False),
    )
}

WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class ApiError(Exception):
    """The API server refused a request; ``status`` is the HTTP code."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def transient(self) -> bool:
        return self.status in RETRYABLE_STATUS or self.status == 0

    @property
    def namespace_terminating(self) -> bool:
        """Refused because the target namespace is being deleted (not an RBAC denial)."""
        return self.status == 403 and "because it is being terminated" in self.message


def kind_of(manifest: Mapping[str, Any]) -> Kind:
    try:
        return KINDS[(manifest["apiVersion"], manifest["kind"])]
    except KeyError:
        what = f"{manifest.get('apiVersion')}/{manifest.get('kind')}"
        raise ValueError(f"unknown kind {what}") from None


def lookup(api_version: str, kind: str) -> Kind:
    return KINDS[(api_version, kind)]


def manifest_hash(manifest: Mapping[str, Any]) -> str:
    """A stable digest of what we apply (without the hash annotation itself)."""
    data = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def with_hash(manifest: Manifest) -> Manifest:
    """The manifest with its own hash recorded in an annotation."""
    digest = manifest_hash(manifest)
    meta = dict(manifest.get("metadata", {}))
    meta["annotations"] = {**meta.get("annotations", {}), ANNOTATION_SPEC_HASH: digest}
    return {**manifest, "metadata": meta}


def is_subset(desired: Any, live: Any) -> bool:
    """True when every field we set has that value in the live object.

    Fields the server adds (defaults, status, metadata) are ignored; lists
    must match item by item, each item compared the same way.
    """
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return False
        return all(k in live and is_subset(v, live[k]) for k, v in desired.items())
    if isinstance(desired, list):
        return (isinstance(live, list) and len(desired) == len(live)
                and all(is_subset(d, v) for d, v in zip(desired, live, strict=True)))
    if desired == live:
        return True
    # The server stores quantities canonically ("0.5" comes back as "500m").
    a, b = quantity(desired), quantity(live)
    return a is not None and a == b


_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$")
_SUFFIX: dict[str, int | Decimal] = {
           "": 1, "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
           "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def quantity(value: Any) -> Decimal | None:
    """A Kubernetes quantity's value, or None when ``value`` is not a quantity string."""
    if not isinstance(value, str):
        return None
    match = _QUANTITY.match(value)
    if not match:
        return None
    number, suffix = match.group(1), match.group(2) or ""
    try:
        base = Decimal(number)
    except InvalidOperation:
        return None
    if suffix[:1] in ("e", "E") and len(suffix) > 1:
        return base * Decimal(10) ** int(suffix[1:])
    return base * _SUFFIX[suffix]


def up_to_date(desired: Manifest, live: Manifest | None) -> bool:
    """Skip the write: our last apply is unchanged and nobody edited our fields since."""
    if live is None:
        return False
    applied = live.get("metadata", {}).get("annotations", {}).get(ANNOTATION_SPEC_HASH)
    return applied == desired["metadata"]["annotations"][ANNOTATION_SPEC_HASH] and is_subset(
        desired, live)


class RequestCounter:
    """Counts API requests by HTTP verb and status code; thread-safe.

    The code is the HTTP status, or "error" when no response came (a dropped
    connection, a timeout). Every attempt counts, retries included.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: collections.Counter[tuple[str, str]] = collections.Counter()

    def add(self, verb: str, code: int) -> None:
        with self._lock:
            self._counts[verb, str(code) if code else "error"] += 1

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)

    @property
    def writes(self) -> int:
        with self._lock:
            return sum(n for (verb, _), n in self._counts.items() if verb in WRITE_VERBS)


class Kube:
    """Synchronous, thread-safe access to the API server for the reconcilers."""

    def __init__(self, api: client.ApiClient, *, field_manager: str = FIELD_MANAGER,
                 retries: int = 5, backoff: float = 0.2, timeout: float = 30) -> None:
        self.api = api
        self.field_manager = field_manager
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.counter = RequestCounter()

    @classmethod
    def from_environment(cls, kubeconfig: str | None = None) -> Kube:
        """In-cluster credentials when running in a Pod, else the kubeconfig."""
        configuration = client.Configuration()
        try:
            config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration)
        except config.ConfigException:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, client_configuration=configuration)
        configuration.retries = False
        return cls(client.ApiClient(configuration))

    # ------------------------------------------------------------------ transport

    def request(self, method: str, path: str, *, body: Any = None,
                query: Mapping[str, str] | None = None,
                content_type: str = "application/json") -> Any:
        """One API call with retries for transient failures; returns the decoded JSON."""
        headers = {"Accept": "application/json", "Content-Type": content_type}
        _, url, headers, _, _ = self.api.param_serialize(
            method, path, query_params=list((query or {}).items()), header_params=headers,
            auth_settings=["BearerToken"])
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self.api.call_api(method, url, header_params=headers, body=body,
                                             _request_timeout=self.timeout)
                response.read()  # type: ignore[no-untyped-call]
                data = response.data
                self.counter.add(method, response.status)
                if response.status < 400:
                    return json.loads(data) if data else None
                error = _api_error(response.status, response.reason, data)
            except ApiException as e:
                error = _api_error(int(e.status or 0), e.reason, e.body)
                self.counter.add(method, error.status)
            except (urllib3.exceptions.HTTPError, OSError) as e:
                error = ApiError(0, "ConnectionError", str(e))
                self.counter.add(method, 0)
            if not error.transient or attempt > self.retries:
                raise error
            delay = self.backoff * 2 ** (attempt - 1)
            log.info("transient API error (%s), retry %d in %.1fs", error, attempt, delay)
            time.sleep(delay)

    # ------------------------------------------------------------------ verbs

    def get(self, kind: Kind, name: str, namespace: str | None = None) -> Manifest | None:
        try:
            return self.request("GET", kind.path(namespace, name))  # type: ignore[no-any-return]
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    def list(self, kind: Kind, namespace: str | None = None, *,
             label_selector: str | None = None) -> list[Manifest]:
        query = {"labelSelector": label_selector} if label_selector else {}
        result = self.request("GET", kind.path(namespace), query=query)
        return list(result.get("items", []))

    def apply(self, manifest: Manifest, *, force: bool = True) -> Manifest:
        """Server-side apply under our field manager."""
        kind = kind_of(manifest)
        meta = manifest["metadata"]
        query = {"fieldManager": self.field_manager, "force": "true" if force else "false"}
        return self.request(  # type: ignore[no-any-return]
            "PATCH", kind.path(meta.get("namespace"), meta["name"]), body=manifest, query=query,
            content_type="application/apply-patch+yaml")

    def ensure(self, manifest: Manifest) -> tuple[Manifest, bool]:
        """Apply unless the live object already matches; returns (object, written)."""
        desired = with_hash(manifest)
        kind = kind_of(desired)
        meta = desired["metadata"]
        live = self.get(kind, meta["name"], meta.get("namespace"))
        if live is not None and up_to_date(desired, live):
            return live, False
        try:
            return self.apply(desired), True
        except ApiError as e:
            if live is None or e.status != 422:
                raise
            rejection = e.message
        # A hand edit of a list's key (a Service port, say) leaves the edited item owned by
        # another manager, and our apply then adds a duplicate. A merge patch replaces
        # whole lists; the apply after it takes ownership back.
        log.info("%s/%s: apply rejected (%s); replacing the edited fields", desired["kind"],
                 meta["name"], rejection)
        self.merge_patch(kind, meta["name"], _without_metadata(desired), meta.get("namespace"))
        return self.apply(desired), True

    def create(self, manifest: Manifest) -> Manifest | None:
        """Create the object; None when it already exists (creation by name is a lock)."""
        kind = kind_of(manifest)
        try:
            return self.request(  # type: ignore[no-any-return]
                "POST", kind.path(manifest["metadata"].get("namespace")), body=manifest,
                query={"fieldManager": self.field_manager})
        except ApiError as e:
            if e.status == 409:
                return None
            raise

    def delete(self, kind: Kind, name: str, namespace: str | None = None, *,
               uid: str | None = None, propagation: str = "Background") -> bool:
        """Delete by name (and UID, when given, so a successor is never hit); False if gone."""
        body: dict[str, Any] = {"propagationPolicy": propagation}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            self.request("DELETE", kind.path(namespace, name), body=body)
        except ApiError as e:
            if e.status == 404 or (e.status == 409 and uid):
                return False
            raise
        return True

    def merge_patch(self, kind: Kind, name: str, patch: Mapping[str, Any],
                    namespace: str | None = None, *, subresource: str | None = None) -> Manifest:
        path = kind.path(namespace, name) + (f"/{subresource}" if subresource else "")
        return self.request(  # type: ignore[no-any-return]
            "PATCH", path, body=dict(patch), query={"fieldManager": self.field_manager},
            content_type="application/merge-patch+json")

    def patch_status(self, kind: Kind, name: str, status: Mapping[str, Any],
                     namespace: str | None = None) -> Manifest:
        return self.merge_patch(kind, name, {"status": dict(status)}, namespace,
                                subresource="status")

    def events(self, items: Iterable[Manifest]) -> None:
        """Record Events. Best effort: a refused one is logged, never raised, so no
        reconcile fails (and retries its writes) over a lost Event."""
        for event in items:
            try:
                self.request("POST", KINDS[("v1", "Event")].path(
                    event["metadata"]["namespace"]), body=event)
            except ApiError as e:
                log.warning("could not record event %s: %s", event["reason"], e)


def _without_metadata(manifest: Manifest) -> Manifest:
    return {k: v for k, v in manifest.items() if k not in ("metadata", "apiVersion", "kind")}


def _api_error(status: int, reason: str | None, body: bytes | str | None) -> ApiError:
    """The server's Status object, decoded: reason and message as it worded them."""
    message = reason or ""
    text = body.decode(errors="replace") if isinstance(body, bytes) else body
    if text:
        try:
            decoded = json.loads(text)
            message = decoded.get("message", message)
            reason = decoded.get("reason", reason)
        except ValueError:
            message = text[:500]
    return ApiError(status, str(reason or ""), message)
