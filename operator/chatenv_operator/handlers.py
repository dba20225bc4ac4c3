"""kopf registrations, and nothing else: kopf runs the process, the operator's own
watches feed the queues.

kopf starts and stops the ``Runtime`` (its watches, cache and controllers), serves
the liveness endpoint and the queue-depth probe, and copies warnings to Events. It
watches nothing itself: the ``watching`` reflectors list and watch every kind the
operator reads, because their listings must replace the cache whole after a
watch error, which kopf's streams do not expose; no kopf state and no finalizer
is ever stored on an object.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from .constants import FIELD_MANAGER
from .runtime import Runtime


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: Runtime, **_: Any) -> None:
    # kopf's peering is not needed: the replicas elect a leader over a Lease (``leading``).
    settings.peering.standalone = True
    settings.networking.request_timeout = 60
    settings.posting.level = logging.WARNING
    settings.posting.reporting_component = FIELD_MANAGER
    await memo.start()


@kopf.on.cleanup()
async def cleanup(memo: Runtime, **_: Any) -> None:
    await memo.stop()


@kopf.on.probe(id="queues")
def queues(memo: Runtime, **_: Any) -> dict[str, int]:
    return {c.name: c.depth for c in memo.controllers}
