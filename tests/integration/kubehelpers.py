"""Small helpers shared by the integration tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kubernetes.client.rest import ApiException


def wait_until(predicate: Callable[[], Any], timeout: float, what: str,
               interval: float = 0.25) -> Any:
    """Poll until ``predicate`` returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def not_found(read: Callable[[], object]) -> bool:
    """True when the read answers 404; any other error propagates."""
    try:
        read()
    except ApiException as e:
        if e.status == 404:
            return True
        raise
    return False


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return c  # type: ignore[no-any-return]
    return None
