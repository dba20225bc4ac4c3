"""`hack/cluster.py down` leaves the host as the real node found it.

Runs first in the e2e tier (see conftest), on a machine where no real node runs yet: it
starts its own node, makes it change the host the ways it does (pods with volumes, a
hostPort, a Service, a NetworkPolicy), stops it, and compares the host before and after.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from e2ehelpers import ROOT, Kubectl, wait_until
from localcluster.hoststate import snapshot

CLUSTER = [sys.executable, str(ROOT / "hack" / "cluster.py")]

WORKLOAD = """
apiVersion: v1
kind: Pod
metadata: {name: host-check, namespace: default, labels: {app: host-check}}
spec:
  containers:
  - name: main
    image: %(image)s
    imagePullPolicy: Never
    command: [sleep, infinity]
    ports: [{containerPort: 8080, hostPort: 8481, hostIP: 127.0.0.1}]
    volumeMounts: [{name: scratch, mountPath: /scratch}]
  volumes: [{name: scratch, emptyDir: {}}]
---
apiVersion: v1
kind: Service
metadata: {name: host-check, namespace: default}
spec:
  selector: {app: host-check}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: host-check, namespace: default}
spec:
  podSelector: {matchLabels: {app: host-check}}
  policyTypes: [Ingress]
  ingress: [{from: [{podSelector: {}}]}]
"""


def _diff(before: dict[str, object], after: dict[str, object]) -> str:
    out = []
    for key in before:
        a = json.dumps(before[key], indent=1, sort_keys=True).splitlines()
        b = json.dumps(after[key], indent=1, sort_keys=True).splitlines()
        out += difflib.unified_diff(a, b, f"{key} before up", f"{key} after down", lineterm="")
    return "\n".join(out)


@pytest.mark.timeout(900)
def test_down_restores_the_host() -> None:
    if os.environ.get("KUBECONFIG"):
        pytest.skip("checks the local real node's host, not a KUBECONFIG cluster")
    info = json.loads(subprocess.run([*CLUSTER, "info"], capture_output=True, text=True,
                                     check=True).stdout)
    if info["running"] and info["mode"] == "real":
        pytest.skip("a real node already runs here (hack/up's): this check needs a host "
                    "without one; run it after hack/down")
    # A short path: the node's sockets live under it.
    state = Path(tempfile.mkdtemp(prefix="chatenv-host."))
    before = snapshot()
    up = subprocess.run([*CLUSTER, "up", "--no-build", "--state-dir", str(state)],
                        capture_output=True, text=True, timeout=600)
    try:
        assert up.returncode == 0, up.stderr
        binary = subprocess.run([*CLUSTER, "kubectl"], capture_output=True, text=True,
                                check=True).stdout.strip()
        kubectl = Kubectl(binary, state / "kubeconfig")
        # The cluster's own Debian image (the volume provisioner's helper) has `sleep`.
        helper = json.loads(kubectl("get", "configmap", "local-path-config", "-n",
                                    "local-path-storage", "-o",
                                    "jsonpath={.data.helperPod\\.yaml}").stdout)
        kubectl("apply", "-f", "-",
                stdin=WORKLOAD % {"image": helper["spec"]["containers"][0]["image"]})
        kubectl("wait", "--for=condition=Ready", "pod/host-check", "--timeout=120s")
        wait_until("the Service's rules", lambda: "host-check" in subprocess.run(
            ["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout)
        wait_until("the NetworkPolicy's ipsets", lambda: "KUBE-" in subprocess.run(
            ["ipset", "list", "-n"], capture_output=True, text=True).stdout)
        during = snapshot()
        assert during != before, "the node changed nothing on the host: the check proves nothing"
    finally:
        down = subprocess.run([*CLUSTER, "down", "--state-dir", str(state)],
                              capture_output=True, text=True, timeout=300)
    assert down.returncode == 0, down.stderr
    shutil.rmtree(state, ignore_errors=True)
    after = snapshot()
    assert after == before, "the host differs after down:\n" + _diff(before, after)
