"""An environment's NetworkPolicy is enforced: pods of other namespaces cannot reach its
PostgreSQL, Redis or chat service, its own pods and the ingress controller can.

On the local real node kube-router's network policy controller enforces it; on another
cluster, its network plugin must (recent kind releases' default plugin does).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from conftest import Node
from e2ehelpers import Kubectl, fetch

RESTRICTED_POD = """
apiVersion: v1
kind: Pod
metadata: {name: %(name)s, namespace: %(namespace)s}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 65534, seccompProfile: {type: RuntimeDefault}}
  terminationGracePeriodSeconds: 1
  containers:
  - name: probe
    image: %(image)s
    command: [sleep, infinity]
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
"""


def _probe_image(kubectl: Kubectl, node: Node) -> str:
    """An image with bash and coreutils the nodes have: the local cluster's Debian image."""
    if node.local:
        helper = kubectl("get", "configmap", "local-path-config", "-n", "local-path-storage",
                         "-o", "jsonpath={.data.helperPod\\.yaml}").stdout
        return str(json.loads(helper)["spec"]["containers"][0]["image"])
    return os.environ.get("CHATENV_E2E_PROBE_IMAGE", "debian:bookworm-slim")


@pytest.fixture
def outsider(kubectl: Kubectl, node: Node, unique: Callable[[str], str],
             dev_env: dict[str, str]) -> Iterator[tuple[str, str]]:
    """A probe pod in a namespace of its own, and one in the environment's namespace."""
    image = _probe_image(kubectl, node)
    other = unique("np-outsider")
    name = unique("np-probe")
    kubectl("create", "namespace", other)
    try:
        for ns in (other, dev_env["namespace"]):
            kubectl("apply", "-f", "-",
                    stdin=RESTRICTED_POD % {"name": name, "namespace": ns, "image": image})
        for ns in (other, dev_env["namespace"]):
            kubectl("wait", "--for=condition=Ready", f"pod/{name}", "-n", ns, "--timeout=120s")
        yield other, name
    finally:
        kubectl("delete", "pod", name, "-n", dev_env["namespace"], "--wait=false", check=False)
        kubectl("delete", "namespace", other, "--wait=false", check=False)


def _connects(kubectl: Kubectl, namespace: str, pod: str, target: str) -> Connected:
    """A TCP connection from the pod to host/port within 3 s (falsy when refused, timed
    out or the exec itself failed; its words say which)."""
    res = kubectl("exec", "-n", namespace, pod, "--", "timeout", "3", "bash", "-c",
                  f"echo > /dev/tcp/{target}", check=False)
    return Connected(res.returncode == 0, res.returncode, res.stderr.strip()[-300:])


@dataclass(frozen=True)
class Connected:
    """Whether a probe connected, and what the exec said when it did not."""

    ok: bool
    exit_code: int
    said: str

    def __bool__(self) -> bool:
        return self.ok


def test_other_namespaces_cannot_reach_the_environment(
        kubectl: Kubectl, dev_env: dict[str, str], outsider: tuple[str, str]) -> None:
    other, pod = outsider
    ns = dev_env["namespace"]
    services = {name: f"{name}.{ns}.svc.cluster.local/{port}"
                for name, port in (("postgres", 5432), ("redis", 6379), ("chat", 80))}
    # Its own pods reach everything: the probe works and the services answer.
    for name, target in services.items():
        assert _connects(kubectl, ns, pod, target), f"{name} unreachable from its own namespace"
    # Another namespace reaches nothing of it, though it reaches the API server's Service.
    assert _connects(kubectl, other, pod, "kubernetes.default.svc.cluster.local/443")
    for name, target in services.items():
        assert not _connects(kubectl, other, pod, target), f"{name} reachable from {other}"
    # The ingress controller still reaches the chat service.
    status, _, _ = fetch(f"{dev_env['url']}/api/messages?limit=1")
    assert status == 200
