"""The operator's only door to the Kubernetes API.

Plain dictionaries in and out (the builders produce them), server-side apply
under one field manager, creation by name (a 409 answers "exists"), deletion
with a UID precondition, status patches, Events, and the list-then-watch
streams that feed the cache (``watching``). Transient failures (429, 5xx,
timeouts, dropped connections) are retried here with exponential backoff;
everything else surfaces as ``ApiError`` with the server's message. Every
request is counted by verb and status code, for the metrics endpoint and the
tests.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from . import logs
from .constants import FIELD_MANAGER
from .kinds import EVENT, Kind, kind_of, lookup

__all__ = ["ApiError", "Kind", "Kube", "RequestCounter", "kind_of", "lookup"]

log = logging.getLogger(__name__)

Manifest = dict[str, Any]
Manifests = list[Manifest]

CONNECTIONS = 64
WATCH_SECONDS = 290  # the server ends each watch after this; it is resumed where it stopped
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


class RequestCounter:
    """Counts API requests by HTTP verb and status code, and by the controller whose
    reconcile sent them (the one bound in the logging context); thread-safe.

    The code is the HTTP status, or "error" when no response came (a dropped
    connection, a timeout). Every attempt counts, retries included.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self._by_controller: collections.Counter[str] = collections.Counter()

    def add(self, verb: str, code: int) -> None:
        controller = logs.current("controller")
        with self._lock:
            self._counts[verb, str(code) if code else "error"] += 1
            if controller:
                self._by_controller[controller] += 1

    def by_controller(self) -> dict[str, int]:
        with self._lock:
            return dict(self._by_controller)

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
        # Passes apply concurrently and every watch holds a connection: keep them pooled.
        configuration.connection_pool_maxsize = CONNECTIONS
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
        return self.list_with_version(kind, namespace, label_selector=label_selector)[0]

    def list_with_version(self, kind: Kind, namespace: str | None = None, *,
                          label_selector: str | None = None) -> tuple[Manifests, str]:
        """The objects and the list's resourceVersion, where a watch resumes from."""
        query = {"labelSelector": label_selector} if label_selector else {}
        result = self.request("GET", kind.path(namespace), query=query)
        return list(result.get("items", [])), str(result["metadata"].get("resourceVersion", ""))

    def watch(self, kind: Kind, since: str, *, label_selector: str | None = None
              ) -> Iterator[Manifest]:
        """The watch events of ``kind`` after resourceVersion ``since`` (bookmarks included),
        until the server ends the stream; ``ApiError`` when it refuses to start one."""
        query = {"watch": "true", "resourceVersion": since, "allowWatchBookmarks": "true",
                 "timeoutSeconds": str(WATCH_SECONDS)}
        if label_selector:
            query["labelSelector"] = label_selector
        _, url, headers, _, _ = self.api.param_serialize(
            "GET", kind.path(), query_params=list(query.items()),
            header_params={"Accept": "application/json"}, auth_settings=["BearerToken"])
        try:
            response = self.api.call_api("GET", url, header_params=headers,
                                         _request_timeout=(10, WATCH_SECONDS + 30))
        except ApiException as e:
            self.counter.add("GET", int(e.status or 0))
            raise _api_error(int(e.status or 0), e.reason, e.body) from None
        self.counter.add("GET", response.status)
        raw = response.response  # the urllib3 response, not read yet: a stream of JSON lines
        if response.status >= 400:
            raise _api_error(response.status, response.reason, raw.read())
        try:
            pending = b""
            for chunk in raw.stream(amt=None, decode_content=False):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)
        finally:
            raw.release_conn()

    def apply(self, manifest: Manifest, *, force: bool = True) -> Manifest:
        """Server-side apply under our field manager."""
        kind = kind_of(manifest)
        meta = manifest["metadata"]
        query = {"fieldManager": self.field_manager, "force": "true" if force else "false"}
        return self.request(  # type: ignore[no-any-return]
            "PATCH", kind.path(meta.get("namespace"), meta["name"]), body=manifest, query=query,
            content_type="application/apply-patch+yaml")

    def apply_over(self, manifest: Manifest, live: Manifest | None) -> Manifest:
        """Apply ``manifest`` over ``live`` (None: it does not exist yet).

        A hand edit of a list's key (a Service port, say) leaves the edited item owned by
        another manager, and the apply is then refused (or would add a duplicate item):
        a merge patch replaces the whole lists first, and the apply after it takes
        ownership back.
        """
        try:
            return self.apply(manifest)
        except ApiError as e:
            if live is None or e.status != 422:
                raise
            rejection = e.message
        meta = manifest["metadata"]
        log.info("%s/%s: apply rejected (%s); replacing the edited fields", manifest["kind"],
                 meta["name"], rejection)
        self.merge_patch(kind_of(manifest), meta["name"], _without_metadata(manifest),
                         meta.get("namespace"))
        return self.apply(manifest)

    def create(self, manifest: Manifest, *, dry_run: bool = False) -> Manifest | None:
        """Create the object; None when it already exists (creation by name is a lock).
        ``dry_run``: only ask whether it would be created (it exists: None), which needs
        the right to create, not to read."""
        kind = kind_of(manifest)
        query = {"fieldManager": self.field_manager, **({"dryRun": "All"} if dry_run else {})}
        try:
            return self.request(  # type: ignore[no-any-return]
                "POST", kind.path(manifest["metadata"].get("namespace")), body=manifest,
                query=query)
        except ApiError as e:
            if e.status == 409:
                return None
            raise

    def replace(self, manifest: Manifest) -> Manifest | None:
        """PUT the whole object, at its metadata.resourceVersion; None when someone changed
        it since (409): compare-and-swap, as a Lease needs."""
        kind, meta = kind_of(manifest), manifest["metadata"]
        try:
            return self.request(  # type: ignore[no-any-return]
                "PUT", kind.path(meta.get("namespace"), meta["name"]), body=manifest,
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
                self.request("POST", EVENT.path(
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
