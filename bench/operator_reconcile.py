"""How fast the operator turns N ChatEnvironments into running environments, against
the floor: `kubectl apply --server-side` of the same manifests.

    .venv/bin/python bench/operator_reconcile.py [--sizes 1,50,200] [--json]

For each N, in one run on one cluster (the local control plane with kwok's fake
nodes, started in a temporary directory, or $KUBECONFIG's): a fresh operator
process; N ChatEnvironments created at once with one `kubectl create`; the seconds
until every environment's workload objects exist (``children_s``) and until every
one is Ready (``ready_s``); every API request the operator sent, per environment;
its peak memory (VmHWM) and how its resident memory grew per environment. Then the
floor: the same manifests rendered offline and sent with two `kubectl apply
--server-side` calls (namespaces first, ``floor_apply_s``), and the seconds until
every chat Deployment and PostgreSQL StatefulSet has rolled out, by the criteria of
`kubectl rollout status` (``floor_rolled_out_s``). Both are polled the same way, in
process. One untimed round of each path warms a fresh control plane first. Everything
is deleted before the next size. When the fake nodes cannot
hold N environments' pods (5 each), the benchmark adds fake nodes to a cluster it
started itself.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (
    ROOT,
    Cluster,
    cluster,
    install,
    load_average,
    operator,
    print_table,
    ready,
    wait,
)

from chatenv_operator import readiness
from chatenv_operator.builders.render import render
from chatenv_operator.config import load_config
from chatenv_operator.constants import MANAGED_SELECTOR
from chatenv_operator.environment import resolve
from chatenv_operator.kinds import (
    CHATENV,
    CONFIGMAP,
    DEPLOYMENT,
    INGRESS,
    NAMESPACE,
    NETWORK_POLICY,
    SERVICE,
    STATEFULSET,
    Kind,
)

# Per environment: chat, redis and jaeger Deployments, the postgres StatefulSet, four
# Services, two ConfigMaps, the Ingress and the NetworkPolicy.
CHILD_KINDS = (DEPLOYMENT, STATEFULSET, SERVICE, CONFIGMAP, INGRESS, NETWORK_POLICY)
CHILDREN_PER_ENV = 12
PODS_PER_ENV = 5  # chat 2, PostgreSQL, Redis, Jaeger
NODE_PODS = 250
NODE = Kind("v1", "Node", "nodes", False)  # the operator never touches nodes: not in kinds


def env_body(name: str) -> dict[str, Any]:
    return {"apiVersion": "chatenv.dev/v1alpha1", "kind": "ChatEnvironment",
            "metadata": {"name": name, "labels": {"bench": "true"}},
            "spec": {"stage": "dev", "namespace": f"{name}-ns"}}


def interval(n: int) -> float:
    """Poll often for small runs, less for large ones (each poll costs the cluster too)."""
    return 0.05 if n <= 10 else 0.25 if n <= 50 else 1.0


def ensure_capacity(c: Cluster, n: int) -> None:
    """Enough fake nodes for ``n`` environments' pods, in a cluster of our own only."""
    nodes = [x for x in c.api.list(NODE)
             if (x["metadata"].get("labels") or {}).get("type") == "kwok"]
    capacity = sum(int(x["status"]["capacity"].get("pods", 0)) for x in nodes)
    needed = n * PODS_PER_ENV + 50  # and some room for whatever else runs
    if capacity >= needed:
        return
    if not c.own:
        print(f"warning: the fake nodes hold {capacity} pods, {needed} needed for N={n}",
              file=sys.stderr)
        return
    extra = -(-(needed - capacity) // NODE_PODS)
    docs = [{"apiVersion": "v1", "kind": "Node",
             "metadata": {"name": f"kwok-bench-{i}",
                          "annotations": {"kwok.x-k8s.io/node": "fake",
                                          "node.alpha.kubernetes.io/ttl": "0"},
                          "labels": {"kubernetes.io/hostname": f"kwok-bench-{i}",
                                     "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                                     "type": "kwok"}},
             "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": str(NODE_PODS)},
                        "capacity": {"cpu": "32", "memory": "256Gi", "pods": str(NODE_PODS)}}}
            for i in range(extra)]
    c.kubectl("apply", "--server-side", "-f", "-",
              stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
    for d in docs:
        c.kubectl("wait", "--for=condition=Ready", f"node/{d['metadata']['name']}",
                  "--timeout=60s")
    print(f"added {extra} fake nodes of {NODE_PODS} pods for N={n}", file=sys.stderr)


def children_complete(c: Cluster, namespaces: set[str]) -> bool:
    per_ns: dict[str, int] = {}
    for kind in CHILD_KINDS:
        for ns, _ in c.names(kind, MANAGED_SELECTOR):
            per_ns[ns] = per_ns.get(ns, 0) + 1
    return all(per_ns.get(ns, 0) >= CHILDREN_PER_ENV for ns in namespaces)


def all_ready(c: Cluster, names: set[str]) -> bool:
    items = c.api.list(CHATENV, label_selector="bench=true")
    return sum(1 for i in items if i["metadata"]["name"] in names and ready(i)) == len(names)


def rolled_out(c: Cluster, namespaces: set[str]) -> bool:
    """`kubectl rollout status` of every chat Deployment and postgres StatefulSet."""
    chats = [d for d in c.api.list(DEPLOYMENT, label_selector=f"{MANAGED_SELECTOR},"
                                   "app.kubernetes.io/name=chat")
             if d["metadata"]["namespace"] in namespaces]
    dbs = [s for s in c.api.list(STATEFULSET, label_selector=f"{MANAGED_SELECTOR},"
                                 "app.kubernetes.io/name=postgres")
           if s["metadata"]["namespace"] in namespaces]
    return (len(chats) == len(dbs) == len(namespaces)
            and all(readiness.deployment(d).ready for d in chats)
            and all(readiness.statefulset(s).ready for s in dbs))


def delete_namespaces(c: Cluster, namespaces: set[str]) -> None:
    wait(lambda: not namespaces & {n for _, n in c.names(NAMESPACE)}, 1800,
         "namespaces deleted", interval=2)


def run_operator(c: Cluster, n: int) -> dict[str, Any]:
    with operator(c) as op:
        time.sleep(2)
        load = load_average()
        before, idle_rss = op.requests(), op.rss_mib()
        names = [f"bench-{uuid.uuid4().hex[:6]}" for _ in range(n)]
        namespaces = {f"{x}-ns" for x in names}
        docs = {"apiVersion": "v1", "kind": "List", "items": [env_body(x) for x in names]}
        start = time.monotonic()
        c.kubectl("create", "-f", "-", stdin=json.dumps(docs))
        t_children = wait(lambda: children_complete(c, namespaces), 1800, "children",
                          interval=interval(n))
        wait(lambda: all_ready(c, set(names)), 3600, "Ready", interval=interval(n))
        t_ready = time.monotonic() - start
        requests = op.requests() - before
        peak, rss = op.peak_rss_mib(), op.rss_mib()
        c.kubectl("delete", "chatenvironments", "-l", "bench=true", "--wait=false")
        wait(lambda: not c.api.list(CHATENV, label_selector="bench=true"), 600,
             "environments deleted", interval=1)
        delete_namespaces(c, namespaces)
    return {"N": n, "children_s": round(t_children, 2), "ready_s": round(t_ready, 2),
            "requests_per_env": round(requests / n, 1), "peak_rss_mib": round(peak, 1),
            "rss_kib_per_env": round((rss - idle_rss) * 1024 / n), "load": round(load, 2)}


def floor_objects(n: int) -> list[dict[str, Any]]:
    config = load_config(ROOT / "services.yaml")
    objects: list[dict[str, Any]] = []
    for _ in range(n):
        body = env_body(f"floor-{uuid.uuid4().hex[:6]}")
        body["metadata"]["uid"] = "none"
        for obj in render(resolve(body, config)):
            obj["metadata"].pop("ownerReferences", None)  # no owner object on this path
            if obj["kind"] == "Secret":
                obj["stringData"]["password"] = uuid.uuid4().hex
            objects.append(obj)
    return objects


def run_floor(c: Cluster, n: int) -> dict[str, Any]:
    """kubectl apply --server-side of the same manifests, rendered offline."""
    objects = floor_objects(n)
    ns_docs = [d for d in objects if d["kind"] == "Namespace"]
    namespaces = {d["metadata"]["name"] for d in ns_docs}
    rest = [d for d in objects if d["kind"] != "Namespace"]
    start = time.monotonic()
    c.kubectl("apply", "--server-side", "-f", "-",
              stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": ns_docs}))
    c.kubectl("apply", "--server-side", "-f", "-",
              stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": rest}))
    t_apply = time.monotonic() - start
    wait(lambda: rolled_out(c, namespaces), 3600, "floor rolled out", interval=interval(n))
    t_ready = time.monotonic() - start
    load = load_average()
    c.kubectl("delete", "namespace", *sorted(namespaces), "--wait=false")
    delete_namespaces(c, namespaces)
    return {"floor_apply_s": round(t_apply, 2), "floor_rolled_out_s": round(t_ready, 2),
            "objects_per_env": len(objects) // n, "load_after": round(load, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,50,200")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with cluster() as c:
        install(c)
        c.kubectl("api-resources")  # kubectl's discovery cache, warm before any timing
        # A fresh control plane pays once for its first objects of each kind (and the
        # controllers' first syncs): one untimed round of each path, so neither the
        # operator's first size nor the floor's pays it.
        run_operator(c, 1)
        run_floor(c, 1)
        rows = []
        for n in sizes:
            ensure_capacity(c, n)
            row = run_operator(c, n)
            row.update(run_floor(c, n))
            row["children_ratio"] = round(row["children_s"] / row["floor_apply_s"], 2)
            row["ready_ratio"] = round(row["ready_s"] / row["floor_rolled_out_s"], 2)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    order = ["N", "children_s", "floor_apply_s", "children_ratio", "ready_s",
             "floor_rolled_out_s", "ready_ratio", "requests_per_env", "objects_per_env",
             "peak_rss_mib", "rss_kib_per_env", "load", "load_after"]
    rows = [{k: r[k] for k in order} for r in rows]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
