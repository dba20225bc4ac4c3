"""How fast the operator turns N ChatEnvironments into running environments.

    .venv/bin/python bench/operator_reconcile.py [--sizes 1,10,50] [--json]

For each N (a fresh operator process each time), applies N ChatEnvironments at
once on the local control plane (or $KUBECONFIG's cluster) and prints: seconds
until every child object exists, seconds until every environment is Ready, API
requests per environment, and the operator's peak RSS. As the floor, it then
times `kubectl apply --server-side` of the same rendered manifests (what an
imperative tool would send) and the wait until those rollouts finish. Deletes
everything it made before the next size.
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
from harness import ROOT, Cluster, cluster, install, operator, print_table, ready, wait

from chatenv_operator.builders.render import render
from chatenv_operator.config import load_config
from chatenv_operator.environment import resolve

CHILD_KINDS = "deployments,statefulsets,services,configmaps,ingresses,networkpolicies"
# Per environment: chat, redis and jaeger Deployments, the postgres StatefulSet, four
# Services, two ConfigMaps, the Ingress and the NetworkPolicy.
CHILDREN_PER_ENV = 12


def env_body(name: str) -> dict[str, Any]:
    return {"apiVersion": "chatenv.dev/v1alpha1", "kind": "ChatEnvironment",
            "metadata": {"name": name, "labels": {"bench": "true"}},
            "spec": {"stage": "dev", "namespace": f"{name}-ns"}}


def children_complete(c: Cluster, namespaces: list[str]) -> bool:
    items = c.json("get", CHILD_KINDS, "-A", "-l", "app.kubernetes.io/managed-by=chatenv-operator")
    per_ns: dict[str, set[str]] = {}
    for item in items["items"]:
        per_ns.setdefault(item["metadata"]["namespace"], set()).add(
            f"{item['kind']}/{item['metadata']['name']}")
    # Every environment has chat, redis, jaeger deployments, the postgres statefulset,
    # four services, two configmaps, the ingress and the network policy.
    return all(len(per_ns.get(ns, ())) >= CHILDREN_PER_ENV for ns in namespaces)


def all_ready(c: Cluster, names: set[str]) -> bool:
    items = c.json("get", "chatenvironments", "-l", "bench=true")["items"]
    return sum(1 for i in items if i["metadata"]["name"] in names and ready(i)) == len(names)


def delete_all(c: Cluster, namespaces: list[str]) -> None:
    c.kubectl("delete", "chatenvironments", "-l", "bench=true", "--wait=false")
    wait(lambda: not c.json("get", "chatenvironments", "-l", "bench=true")["items"], 120,
         "environments deleted")
    wait(lambda: not [n for n in c.json("get", "namespaces")["items"]
                      if n["metadata"]["name"] in namespaces], 300, "namespaces deleted",
         interval=1)


def run_operator(c: Cluster, n: int) -> dict[str, Any]:
    with operator(c) as op:
        time.sleep(1)
        before = op.requests()
        names = [f"bench-{uuid.uuid4().hex[:6]}" for _ in range(n)]
        namespaces = [f"{x}-ns" for x in names]
        docs = {"apiVersion": "v1", "kind": "List", "items": [env_body(x) for x in names]}
        start = time.monotonic()
        c.kubectl("create", "-f", "-", stdin=json.dumps(docs))
        t_children = wait(lambda: children_complete(c, namespaces), 600, "children")
        wait(lambda: all_ready(c, set(names)), 900, "Ready")
        t_ready = time.monotonic() - start
        requests = op.requests() - before
        rss = op.peak_rss_mib()
        delete_all(c, namespaces)
    return {"N": n, "children_s": round(t_children, 2), "ready_s": round(t_ready, 2),
            "requests_per_env": round(requests / n, 1), "peak_rss_mib": round(rss, 1)}


def run_floor(c: Cluster, n: int) -> dict[str, Any]:
    """kubectl apply --server-side of the same manifests, rendered offline."""
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
    namespaces = [d["metadata"]["name"] for d in objects if d["kind"] == "Namespace"]
    ns_docs = [d for d in objects if d["kind"] == "Namespace"]
    rest = [d for d in objects if d["kind"] != "Namespace"]
    start = time.monotonic()
    c.kubectl("apply", "--server-side", "-f", "-",
              stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": ns_docs}))
    c.kubectl("apply", "--server-side", "-f", "-",
              stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": rest}))
    t_apply = time.monotonic() - start
    for ns in namespaces:
        c.kubectl("rollout", "status", "deployment/chat", "-n", ns, "--timeout=600s")
        c.kubectl("rollout", "status", "statefulset/postgres", "-n", ns, "--timeout=600s")
    t_ready = time.monotonic() - start
    c.kubectl("delete", "namespace", *namespaces, "--wait=false")
    wait(lambda: not [x for x in c.json("get", "namespaces")["items"]
                      if x["metadata"]["name"] in namespaces], 300, "floor namespaces deleted",
         interval=1)
    return {"N": n, "apply_s": round(t_apply, 2), "rolled_out_s": round(t_ready, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,10,50")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with cluster() as c:
        install(c)
        rows = []
        for n in sizes:
            row = run_operator(c, n)
            floor = run_floor(c, n)
            row.update({"floor_apply_s": floor["apply_s"],
                        "floor_rolled_out_s": floor["rolled_out_s"]})
            rows.append(row)
            print(f"N={n} done", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
