"""Installing again changes nothing: `hack/up` run twice is a no-op."""

from __future__ import annotations

import subprocess
import sys

from conftest import Node
from e2ehelpers import ROOT, Kubectl


def _versions(kubectl: Kubectl) -> dict[str, str]:
    """resourceVersion of what an install and the example environment consist of."""
    out = {}
    for kind, name, ns in (("deployment", "chatenv-operator", "chatenv-system"),
                           ("clusterrole", "chatenv-operator", ""),
                           ("crd", "chatenvironments.chatenv.dev", ""),
                           ("chatenv", "dev", ""),
                           ("deployment", "chat", "chat-dev"),
                           ("statefulset", "postgres", "chat-dev")):
        args = ["get", kind, name, "-o", "jsonpath={.metadata.resourceVersion}"]
        out[f"{kind}/{name}"] = kubectl(*args, *(["-n", ns] if ns else [])).stdout
    return out


def test_installing_again_changes_nothing(kubectl: Kubectl, node: Node,
                                          dev_env: dict[str, str]) -> None:
    kubectl("rollout", "status", "deployment/chat", "-n", dev_env["namespace"], "--timeout=120s")
    before = _versions(kubectl)
    if node.local:
        res = subprocess.run([sys.executable, str(ROOT / "hack" / "cluster.py"), "install"],
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
    kubectl("apply", "-f", str(ROOT / "deploy" / "examples" / "dev.yaml"))
    assert _versions(kubectl) == before
