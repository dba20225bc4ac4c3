"""A DevSlot as GitHub Actions uses it: `chatenv ensure-ready`, its URL, `chatenv cleanup`."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

from conftest import Node
from e2ehelpers import ROOT, Kubectl, fetch, wait_until

CHATENV = str(Path(sys.executable).parent / "chatenv")
REPOSITORY = "acme/e2e"


def chatenv(kubeconfig: Path, *args: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, KUBECONFIG=str(kubeconfig))
    return subprocess.run([CHATENV, *args, "--repository", REPOSITORY], capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=ROOT)


def node_info() -> dict[str, object]:
    out = subprocess.run([sys.executable, str(ROOT / "hack" / "cluster.py"), "info"],
                         capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out))


def _pods_on_node(kubectl: Kubectl) -> int:
    pods = kubectl.json("get", "pods", "-A", "--field-selector=status.phase=Running")["items"]
    return sum(1 for p in pods if not p["spec"].get("hostNetwork"))


def test_a_devslot_serves_an_empty_chat_and_leaves_nothing_behind(
        kubeconfig: Path, kubectl: Kubectl, node: Node) -> None:
    issue = random.randint(10_000, 99_999)
    res = chatenv(kubeconfig, "ensure-ready", "--issue", str(issue), "--timeout", "300")
    assert res.returncode == 0, res.stdout + res.stderr
    slot = json.loads(res.stdout)
    url, ns = slot["url"], slot["namespace"]
    try:
        status, content_type, _ = fetch(f"{url}/")
        assert status == 200
        assert "text/html" in content_type
        status, _, body = fetch(f"{url}/api/messages")
        assert status == 200
        assert json.loads(body) == []
        pod_uids = kubectl("get", "pods", "-n", ns, "-o",
                           "jsonpath={.items[*].metadata.uid}").stdout.split()
        assert len(pod_uids) >= 4
    finally:
        done = chatenv(kubeconfig, "cleanup", "--issue", str(issue))
    assert done.returncode == 0, done.stdout + done.stderr
    wait_until(f"namespace {ns} to be gone",
               lambda: kubectl("get", "namespace", ns, check=False).returncode != 0,
               timeout=180, interval=1)
    if not node.local:
        return
    # Inside the node: no container, mount or network interface of its pods is left.
    facts = node_info()
    ctr = [str(c) for c in facts["ctr"]]  # type: ignore[union-attr]
    def no_containers() -> bool:
        return not subprocess.run(
            [*ctr, "containers", "ls", "-q", f'labels."io.kubernetes.pod.namespace"=={ns}'],
            capture_output=True, text=True, check=True).stdout.split()

    wait_until(f"the containers of {ns} to be removed", no_containers, timeout=120, interval=1)
    mounts = Path("/proc/self/mountinfo").read_text()
    assert not [u for u in pod_uids if u in mounts], "mounts of the slot's pods are left"
    bridge = str(facts["cniBridge"])

    def veths_match_pods() -> bool:
        links = subprocess.run(["ip", "-o", "link", "show", "master", bridge],
                               capture_output=True, text=True).stdout.splitlines()
        return len(links) == _pods_on_node(kubectl)

    wait_until("one veth per running pod", veths_match_pods, timeout=60, interval=1)
