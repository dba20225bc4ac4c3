"""Shared test set-up: markers by directory, and the path to the hack/ helpers.

tests/unit         pure logic, no servers             (marker: unit)
tests/integration  a real Kubernetes control plane    (marker: integration)
tests/chat         real PostgreSQL and Redis          (marker: chat)
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "hack"))

_MARKERS = {"unit": pytest.mark.unit, "integration": pytest.mark.integration,
            "chat": pytest.mark.chat}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts and parts[0] in _MARKERS:
            item.add_marker(_MARKERS[parts[0]])
