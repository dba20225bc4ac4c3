"""Small helpers shared by the integration tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

GROUP, VERSION = "chatenv.dev", "v1alpha1"


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


class Slots:
    """Creates DevSlots for a unique repository; deletes them and waits for the pool."""

    def __init__(self, custom: client.CustomObjectsApi) -> None:
        self.custom = custom
        self.repository = f"acme/t{uuid.uuid4().hex[:6]}"
        self.names: list[str] = []

    def create(self, issue: int | None = None, pr: int | None = None, **spec: Any
               ) -> dict[str, Any]:
        name = f"{self.repository.replace('/', '-')}-{issue or 'x'}-{pr or 'x'}"
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "DevSlot",
                "metadata": {"name": name},
                "spec": {"repository": self.repository, **({"issue": issue} if issue else {}),
                         **({"pr": pr} if pr else {}), **spec}}
        self.names.append(name)
        return self.custom.create_cluster_custom_object(  # type: ignore[no-any-return]
            GROUP, VERSION, "devslots", body)

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            return self.custom.get_cluster_custom_object(  # type: ignore[no-any-return]
                GROUP, VERSION, "devslots", name)
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def delete(self, name: str) -> None:
        try:
            self.custom.delete_cluster_custom_object(GROUP, VERSION, "devslots", name)
        except ApiException as e:
            if e.status != 404:
                raise

    def slot_of(self, name: str) -> int | None:
        return ((self.get(name) or {}).get("status") or {}).get("slot")

    def cleanup(self) -> None:
        for name in self.names:
            self.delete(name)
        # Wait until every environment of ours is gone, so the next test finds a free pool.
        def ours_gone() -> bool:
            envs = self.custom.list_cluster_custom_object(GROUP, VERSION, "chatenvironments")
            return not [e for e in envs["items"] if e["metadata"].get("labels", {}).get(
                "chatenv.dev/repository") == self.repository.replace("/", ".")]
        wait_until(ours_gone, 120, "the DevSlots' environments to be collected", interval=1)


def slot_ready(slots: Slots, name: str) -> bool:
    c = condition(slots.get(name), "Ready")
    return bool(c and c["status"] == "True")


def chatenv(kubeconfig: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    env.pop("GITHUB_REPOSITORY", None)
    return subprocess.run([sys.executable, "-m", "chatenv_operator.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def ok_json(res: subprocess.CompletedProcess[str], code: int = 0) -> Any:
    """The JSON a command printed, after checking its exit code."""
    assert res.returncode == code, (res.returncode, res.stderr)
    return json.loads(res.stdout)
