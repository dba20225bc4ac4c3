"""Shared test set-up: markers by directory, and the path to the hack/ helpers.

tests/unit         pure logic, no servers             (marker: unit)
tests/integration  a real Kubernetes control plane    (marker: integration)
tests/chat         real PostgreSQL and Redis          (marker: chat)
tests/e2e          a real node: containers, DNS, Ingress (marker: e2e)
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "hack"))

_MARKERS = {"unit": pytest.mark.unit, "integration": pytest.mark.integration,
            "chat": pytest.mark.chat, "e2e": pytest.mark.e2e}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts and parts[0] in _MARKERS:
            item.add_marker(_MARKERS[parts[0]])
    # The host check of the e2e tier starts and stops a node of its own: it runs before the
    # tier's shared node starts.
    e2e = [i for i, item in enumerate(items) if item.get_closest_marker("e2e")]
    if e2e:
        first, last = e2e[0], e2e[-1] + 1
        tier = items[first:last]
        tier.sort(key=lambda item: Path(str(item.fspath)).name != "test_host.py")
        items[first:last] = tier
