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


TIER_ORDER = ("unit", "chat", "integration", "e2e")


def _tier(item: pytest.Item) -> str:
    parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
    return parts[0] if parts else ""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _tier(item) in _MARKERS:
            item.add_marker(_MARKERS[_tier(item)])
    # Fast tiers first; the e2e tier last, so its real node stops with the session, and
    # within it the host check first: it starts and stops a node of its own before the
    # tier's shared node starts.
    def order(item: pytest.Item) -> tuple[int, bool]:
        tier = _tier(item)
        rank = TIER_ORDER.index(tier) if tier in TIER_ORDER else len(TIER_ORDER)
        return rank, Path(str(item.fspath)).name != "test_host.py"

    items.sort(key=order)
