"""kopf registrations, and nothing else: each handler hands a name to a work queue.

Handlers react to watch events only (``@kopf.on.event``), so kopf keeps no
per-object state and adds no finalizers: the reconcile loops in
``controller`` do the work, and deletion is left to the garbage collector.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from .constants import (
    CHATENV_PLURAL,
    DEVSLOT_PLURAL,
    FIELD_MANAGER,
    GROUP,
    LABEL_MANAGED_BY,
    MANAGED_BY,
    MANAGED_SELECTOR,
    VERSION,
)
from .runtime import Runtime

# The children whose changes (a hand edit, a deletion, a rollout finishing) wake the owner.
CHILDREN = (
    ("v1", "namespaces"),
    ("v1", "configmaps"),
    ("v1", "services"),
    ("v1", "resourcequotas"),
    ("v1", "limitranges"),
    ("v1", "serviceaccounts"),
    ("rbac.authorization.k8s.io", "rolebindings"),
    ("apps", "deployments"),
    ("apps", "statefulsets"),
    ("networking.k8s.io", "ingresses"),
    ("networking.k8s.io", "networkpolicies"),
)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: Runtime, **_: Any) -> None:
    settings.peering.standalone = True  # one replica, Recreate strategy: no peering needed
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 60
    settings.posting.level = logging.WARNING
    settings.posting.reporting_component = FIELD_MANAGER
    for group, plural in CHILDREN:
        settings.watching.label_selectors[group, plural] = MANAGED_SELECTOR
    await memo.start()


@kopf.on.cleanup()
async def cleanup(memo: Runtime, **_: Any) -> None:
    await memo.stop()


@kopf.on.probe(id="queues")
def queues(memo: Runtime, **_: Any) -> dict[str, int]:
    return {c.name: c.depth for c in memo.controllers}


@kopf.on.event(GROUP, VERSION, CHATENV_PLURAL)
async def chatenvironment_event(type: str | None, name: str, body: kopf.Body, memo: Runtime,
                                **_: Any) -> None:
    memo.observe_environment(type, name, body)


@kopf.on.event(GROUP, VERSION, DEVSLOT_PLURAL)
async def devslot_event(type: str | None, name: str, body: kopf.Body, memo: Runtime,
                        **_: Any) -> None:
    memo.observe_devslot(type, name, body)


for _group, _plural in CHILDREN:

    @kopf.on.event(_group, _plural, labels={LABEL_MANAGED_BY: MANAGED_BY},
                   id=f"wake-owner-{_plural}")
    async def child_event(labels: kopf.Labels, memo: Runtime, **_: Any) -> None:
        memo.observe_child(labels)
