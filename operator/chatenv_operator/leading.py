"""Leader election over a coordination.k8s.io Lease: of the operator's replicas, one
reconciles; the others keep their watches warm and wait.

As client-go's leaderelection does it:

- A candidate takes the Lease when nobody holds it, or when its holder has not renewed it
  for ``lease_seconds`` — counted on the candidate's own monotonic clock from the moment it
  last saw the Lease change, so the clocks of different nodes never matter.
- Every write is a compare-and-swap (an update at the resourceVersion read): of two
  candidates, one wins, the other gets a 409 and stays a candidate.
- The leader renews every ``retry_seconds``; if it could not renew for ``renew_seconds``
  (shorter than ``lease_seconds``, so it stops before anyone may take over), it has lost.
- A leader that stops cleanly releases the Lease (no holder), so another takes over at once.

``Elector.attempt`` is one synchronous try (it blocks on the API); the runtime runs it in
a thread on its schedule. Time comes from a ``Clock``, so the tests need no waiting.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from .kinds import LEASE

log = logging.getLogger(__name__)

LEASE_NAME = "chatenv-operator"
Manifest = dict[str, Any]


class LeaseApi(Protocol):
    """What the elector sends (``kube.Kube``; an in-memory API in the tests)."""

    def get(self, kind: Any, name: str, namespace: str | None = None) -> Manifest | None: ...

    def create(self, manifest: Manifest, *, dry_run: bool = False) -> Manifest | None: ...

    def replace(self, manifest: Manifest) -> Manifest | None: ...


def identity() -> str:
    """This process: its pod's name (or host name), and enough to tell two apart."""
    host = os.environ.get("POD_NAME") or socket.gethostname()
    return f"{host}_{uuid.uuid4().hex[:8]}"


def _micro(when: datetime) -> str:
    """A Lease's MicroTime."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Elector:
    api: LeaseApi
    namespace: str
    identity: str = field(default_factory=identity)
    lease_seconds: float = 10.0
    """How long a Lease nobody renews stays its holder's."""
    renew_seconds: float = 7.0
    """How long the leader goes on without a renewal before it knows it has lost."""
    retry_seconds: float = 2.0
    """How often a candidate tries, and the leader renews."""
    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    leading: bool = False
    _seen: tuple[Any, ...] | None = None
    _seen_at: float = 0.0
    _renewed_at: float = 0.0

    def attempt(self) -> bool:
        """Take or renew the Lease once; whether this process leads now. An API error
        propagates: the caller asks ``lost()`` whether it may still lead."""
        now = self.monotonic()
        lease = self.api.get(LEASE, LEASE_NAME, self.namespace)
        if lease is None:
            return self._outcome(self.api.create(self._lease(None)) is not None, now)
        spec = lease.get("spec") or {}
        record = (spec.get("holderIdentity"), spec.get("renewTime"),
                  spec.get("leaseTransitions"))
        if record != self._seen:
            self._seen, self._seen_at = record, now
        holder = spec.get("holderIdentity")
        if holder and holder != self.identity:
            if self.leading:
                log.error("lost the lease to %s", holder)
                self.leading = False
            if now < self._seen_at + self.lease_seconds:
                return False  # someone holds it, and has renewed lately
        return self._outcome(self.api.replace(self._lease(lease)) is not None, now)

    def lost(self) -> bool:
        """A leader that has not renewed for ``renew_seconds``: it must stop reconciling."""
        return self.leading and self.monotonic() - self._renewed_at > self.renew_seconds

    def release(self) -> None:
        """Give the Lease up, so another replica takes over at once (on a clean stop)."""
        if not self.leading:
            return
        self.leading = False
        lease = self.api.get(LEASE, LEASE_NAME, self.namespace)
        if lease is not None and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
            spec = {**lease["spec"], "holderIdentity": None, "leaseDurationSeconds": 1,
                    "renewTime": _micro(self.wall())}
            self.api.replace({**lease, "spec": spec})

    def _outcome(self, won: bool, now: float) -> bool:
        if won:
            if not self.leading:
                log.info("leading: %s holds Lease %s/%s", self.identity, self.namespace,
                         LEASE_NAME)
            self.leading, self._renewed_at = True, now
        elif self.lost():
            log.error("could not renew the lease for %.0f s: stepping down",
                      self.renew_seconds)
            self.leading = False
        return self.leading

    def _lease(self, current: Mapping[str, Any] | None) -> Manifest:
        """The Lease as this process holds it: a new one, or ``current`` taken or renewed."""
        now = _micro(self.wall())
        old = dict((current or {}).get("spec") or {})
        ours = old.get("holderIdentity") == self.identity
        spec = {**old, "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.lease_seconds), "renewTime": now,
                "acquireTime": old.get("acquireTime") if ours else now,
                "leaseTransitions": int(old.get("leaseTransitions") or 0) + (
                    0 if ours or current is None else 1)}
        metadata = {k: v for k, v in ((current or {}).get("metadata") or {
            "name": LEASE_NAME, "namespace": self.namespace}).items() if k != "managedFields"}
        return LEASE.new(metadata, spec=spec)
