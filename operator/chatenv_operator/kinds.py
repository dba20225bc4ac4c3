"""Every kind of object the operator touches, declared once. Pure data, no I/O.

A ``Kind`` knows its API path and builds the skeleton of a manifest of its kind, so
the builders, the API door, the watch-fed cache and the tests all name kinds from
here. ``WATCHED`` is what the operator lists and watches (its RBAC grants ``list`` and
``watch`` on exactly these, a unit test checks it); everything else it reads by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .constants import API_VERSION, MANAGED_SELECTOR

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    """One API resource: its apiVersion and kind, its plural, whether it is namespaced."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name:
            base += f"/{quote(name, safe='')}"
        return base

    def new(self, metadata: Manifest, **body: Any) -> Manifest:
        """A manifest of this kind: apiVersion, kind, metadata, then ``body``'s fields."""
        return {"apiVersion": self.api_version, "kind": self.kind, "metadata": metadata, **body}

    def __str__(self) -> str:
        return self.kind


NAMESPACE = Kind("v1", "Namespace", "namespaces", False)
CONFIGMAP = Kind("v1", "ConfigMap", "configmaps", True)
SECRET = Kind("v1", "Secret", "secrets", True)
SERVICE = Kind("v1", "Service", "services", True)
SERVICE_ACCOUNT = Kind("v1", "ServiceAccount", "serviceaccounts", True)
PVC = Kind("v1", "PersistentVolumeClaim", "persistentvolumeclaims", True)
PV = Kind("v1", "PersistentVolume", "persistentvolumes", False)
RESOURCE_QUOTA = Kind("v1", "ResourceQuota", "resourcequotas", True)
LIMIT_RANGE = Kind("v1", "LimitRange", "limitranges", True)
EVENT = Kind("v1", "Event", "events", True)
POD = Kind("v1", "Pod", "pods", True)
DEPLOYMENT = Kind("apps/v1", "Deployment", "deployments", True)
STATEFULSET = Kind("apps/v1", "StatefulSet", "statefulsets", True)
JOB = Kind("batch/v1", "Job", "jobs", True)
INGRESS = Kind("networking.k8s.io/v1", "Ingress", "ingresses", True)
NETWORK_POLICY = Kind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", True)
ROLE = Kind("rbac.authorization.k8s.io/v1", "Role", "roles", True)
ROLE_BINDING = Kind("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", True)
LEASE = Kind("coordination.k8s.io/v1", "Lease", "leases", True)
CHATENV = Kind(API_VERSION, "ChatEnvironment", "chatenvironments", False)
DEVSLOT = Kind(API_VERSION, "DevSlot", "devslots", False)

KINDS: dict[tuple[str, str], Kind] = {(k.api_version, k.kind): k for k in (
    NAMESPACE, CONFIGMAP, SECRET, SERVICE, SERVICE_ACCOUNT, PVC, PV, RESOURCE_QUOTA, LIMIT_RANGE,
    EVENT, POD, DEPLOYMENT, STATEFULSET, JOB, INGRESS, NETWORK_POLICY, ROLE, ROLE_BINDING,
    LEASE, CHATENV, DEVSLOT)}


@dataclass(frozen=True)
class Watch:
    """A kind the operator lists and watches, and the label selector it asks the server for."""

    kind: Kind
    selector: str | None = MANAGED_SELECTOR


WATCHED: tuple[Watch, ...] = (
    Watch(CHATENV, None),
    Watch(DEVSLOT, None),
    # Every namespace, not only ours: a name taken by someone else is a conflict to report,
    # and the cache must show it without a read.
    Watch(NAMESPACE, None),
    Watch(CONFIGMAP),
    Watch(SERVICE),
    Watch(RESOURCE_QUOTA),
    Watch(LIMIT_RANGE),
    Watch(SERVICE_ACCOUNT),
    Watch(ROLE_BINDING),
    Watch(DEPLOYMENT),
    Watch(STATEFULSET),
    Watch(INGRESS),
    Watch(NETWORK_POLICY),
    Watch(PVC),  # Redis's volume claim; PostgreSQL's comes from its StatefulSet
    Watch(JOB),  # a snapshot's restore: the chat pods wait for it
)
WATCHED_KINDS = frozenset(w.kind for w in WATCHED)


def kind_of(manifest: Mapping[str, Any]) -> Kind:
    """The kind of a manifest; ValueError for one the operator does not know."""
    try:
        return KINDS[(manifest["apiVersion"], manifest["kind"])]
    except KeyError:
        what = f"{manifest.get('apiVersion')}/{manifest.get('kind')}"
        raise ValueError(f"unknown kind {what}") from None


def lookup(api_version: str, kind: str) -> Kind:
    return KINDS[(api_version, kind)]


def key_of(manifest: Mapping[str, Any]) -> str:
    """``Kind/name``: how a pass names an object of its environment (one namespace)."""
    return f"{manifest['kind']}/{manifest['metadata']['name']}"
