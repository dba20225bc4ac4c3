"""Is a live workload ready? Pure functions over the objects the API returned."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

JOB_FAILED = "failed"


@dataclass(frozen=True)
class Readiness:
    ready: bool
    message: str

    def to_status(self) -> dict[str, Any]:
        return {"ready": self.ready, "message": self.message}


def _observed(obj: Mapping[str, Any]) -> bool:
    meta, status = obj.get("metadata", {}), obj.get("status") or {}
    return int(status.get("observedGeneration", 0)) >= int(meta.get("generation", 0))


def deployment(obj: Mapping[str, Any] | None) -> Readiness:
    """Rolled out: the controller saw the latest spec and every replica is updated and available."""
    if obj is None:
        return Readiness(False, "not created yet")
    want = int(obj.get("spec", {}).get("replicas", 1))
    status = obj.get("status") or {}
    total = int(status.get("replicas", 0))
    updated = int(status.get("updatedReplicas", 0))
    available = int(status.get("availableReplicas", 0))
    if not _observed(obj):
        return Readiness(False, "rollout not observed yet")
    if want == 0:
        return Readiness(total == 0, "scaled to zero" if total == 0 else f"{total} pods stopping")
    if updated < want or total > want:
        return Readiness(False, f"rolling out: {updated}/{want} updated")
    if available < want:
        return Readiness(False, f"{available}/{want} available")
    return Readiness(True, f"{available}/{want} available")


def statefulset(obj: Mapping[str, Any] | None) -> Readiness:
    if obj is None:
        return Readiness(False, "not created yet")
    want = int(obj.get("spec", {}).get("replicas", 1))
    status = obj.get("status") or {}
    total = int(status.get("replicas", 0))
    ready = int(status.get("readyReplicas", 0))
    if not _observed(obj):
        return Readiness(False, "rollout not observed yet")
    if want == 0:
        return Readiness(total == 0, "scaled to zero" if total == 0 else f"{total} pods stopping")
    if status.get("updateRevision") and status.get("currentRevision") != status.get(
            "updateRevision"):
        return Readiness(False, f"rolling out: {ready}/{want} ready")
    if ready < want:
        return Readiness(False, f"{ready}/{want} ready")
    return Readiness(True, f"{ready}/{want} ready")


def ingress(obj: Mapping[str, Any] | None) -> Readiness:
    """Ready once the ingress controller admitted it: it reports an address in the status.

    Stored is not enough: without a controller serving it, nobody reaches the environment.
    """
    if obj is None:
        return Readiness(False, "not created yet")
    lb = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    if lb:
        address = lb[0].get("ip") or lb[0].get("hostname") or "?"
        return Readiness(True, f"serving at {address}")
    return Readiness(False, "waiting for the ingress controller to admit it (no address yet)")


def job(obj: Mapping[str, Any] | None) -> Readiness:
    """Ready once it succeeded; a Job that failed for good (its attempts used up) is not,
    and says so first thing in its message: ``FAILED``."""
    if obj is None:
        return Readiness(False, "not created yet")
    status = obj.get("status") or {}
    if int(status.get("succeeded") or 0) > 0:
        return Readiness(True, "succeeded")
    failed = next((c for c in status.get("conditions") or ()
                   if c.get("type") == "Failed" and c.get("status") == "True"), None)
    if failed:
        return Readiness(False, f"{JOB_FAILED}: {failed.get('message') or failed.get('reason')}")
    attempts = int(status.get("failed") or 0) + 1
    return Readiness(False, f"running (attempt {attempts})")
