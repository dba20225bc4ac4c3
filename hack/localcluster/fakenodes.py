"""Fake nodes: kwok plays the kubelet (and the ingress controller) for the fast tier."""

from __future__ import annotations

import json

from .controlplane import POD_CIDR, kubectl
from .processes import State, free_port, start
from .versions import Binaries

FAKE_NODES = 2

# An Ingress gets a load-balancer address, as a real controller reports it once it has
# admitted the Ingress: the operator's "Ready only when the controller admitted it"
# then holds on fake nodes too, as Running/Ready pods do without containers.
INGRESS_STAGE = """\
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: ingress-admitted
spec:
  resourceRef:
    apiGroup: networking.k8s.io/v1
    kind: Ingress
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.loadBalancer.ingress'
      operator: 'DoesNotExist'
  next:
    statusTemplate: |
      loadBalancer:
        ingress:
        - ip: 127.0.0.1
"""


def bootstrap_objects(nodes: int = FAKE_NODES) -> str:
    """Fake Nodes for kwok and a default StorageClass served by the host-path provisioner."""
    docs: list[dict[str, object]] = [{
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": "standard",
                     "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "kubernetes.io/host-path",
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    }]
    for i in range(nodes):
        docs.append({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": f"kwok-node-{i}",
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {"kubernetes.io/hostname": f"kwok-node-{i}", "kubernetes.io/os": "linux",
                           "kubernetes.io/arch": "amd64", "type": "kwok"},
            },
            "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "250"},
                       "capacity": {"cpu": "32", "memory": "256Gi", "pods": "250"}},
        })
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": docs})


def start_fake_nodes(b: Binaries, state: State) -> None:
    kubectl(b, state.kubeconfig, "apply", "--server-side", "-f", "-", stdin=bootstrap_objects())
    ingress_stage = state.dir / "kwok-ingress-stage.yaml"
    ingress_stage.write_text(INGRESS_STAGE)
    start("kwok", [
        str(b.path("kwok")),
        f"--kubeconfig={state.kubeconfig}",
        "--manage-all-nodes=true",
        "--node-lease-duration-seconds=40",
        f"--cidr={POD_CIDR}",
        f"--config={b.kwok_stages}",
        f"--config={ingress_stage}",
        f"--server-address=127.0.0.1:{free_port()}",
    ], state)
