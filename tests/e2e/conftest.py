"""The e2e tier: environments that actually run on a real node, reached through Ingress.

Without KUBECONFIG the session uses the local cluster with a real node: the one
`hack/up` left running, or one it starts (and stops at the end) with
`hack/cluster.py up`; `hack/cluster.py install` then builds chatenv's images and
installs deploy/ with the local overlay (idempotent). With KUBECONFIG the tests
run unchanged against that cluster (kind, k3s, …), where chatenv must already be
installed and its ingress controller reachable at the environments' URLs (see
.github/workflows/e2e-kind.yml); the few checks that look inside the node itself
(containers, veths, mounts, the host's state) need the local node and say so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2ehelpers import ROOT, Kubectl, fetch, wait_ready, wait_until

CLUSTER = [sys.executable, str(ROOT / "hack" / "cluster.py")]
E2E = Path(__file__).resolve().parent
# Starting the node and installing chatenv happen inside the first test's time.
TIMEOUT = 600
# How long after Ready an environment's URL may take to serve (the ingress controller
# loads the routes of an Ingress it has just admitted).
SERVING_AFTER_READY = 10


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent == E2E and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(TIMEOUT))


@dataclass(frozen=True)
class Node:
    """The local real node: where its state lives (None against a cluster of KUBECONFIG)."""

    state_dir: Path | None

    @property
    def local(self) -> bool:
        return self.state_dir is not None


def _cluster(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLUSTER, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def node() -> Iterator[Node]:
    if os.environ.get("KUBECONFIG"):
        yield Node(None)
        return
    info = json.loads(_cluster("info").stdout)
    started = not (info["running"] and info["mode"] == "real")
    if started:
        res = _cluster("up", "--no-build")
        if res.returncode != 0:
            pytest.fail(f"could not start the local cluster with a real node:\n{res.stderr}",
                        pytrace=False)
        info = json.loads(_cluster("info").stdout)
    try:
        res = _cluster("install")
        if res.returncode != 0:
            pytest.fail(f"could not install chatenv on the local cluster:\n{res.stderr}",
                        pytrace=False)
        yield Node(Path(info["kubeconfig"]).parent)
    finally:
        if started:
            _cluster("down")


@pytest.fixture(scope="session")
def kubeconfig(node: Node) -> Path:
    if node.state_dir is None:
        return Path(os.environ["KUBECONFIG"])
    return node.state_dir / "kubeconfig"


@pytest.fixture(scope="session")
def kubectl(kubeconfig: Path) -> Kubectl:
    binary = subprocess.run([*CLUSTER, "kubectl"], capture_output=True, text=True,
                            check=True).stdout.strip()
    return Kubectl(binary, kubeconfig)


@pytest.fixture(scope="session")
def dev_env(kubectl: Kubectl) -> dict[str, str]:
    """The dev environment of deploy/examples/dev.yaml, Ready and serving: URL, namespace."""
    kubectl("apply", "-f", str(ROOT / "deploy" / "examples" / "dev.yaml"))
    env = wait_ready(kubectl, "dev")
    # Ready means the controller admitted the Ingress; its routes follow within moments.
    wait_until("the URL to serve the UI", lambda: fetch(f"{env['url']}/")[0] == 200,
               timeout=SERVING_AFTER_READY, interval=0.2)
    return env


@pytest.fixture
def local_node(node: Node) -> Node:
    """For the checks that look inside the node: the local real node only."""
    if not node.local:
        pytest.skip("looks inside the node: needs the local real node, not a KUBECONFIG cluster")
    return node


@pytest.fixture
def unique() -> Callable[[str], str]:
    import uuid

    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:6]}"
