"""How fast 50 DevSlots at once get numbers, become Ready, and are reclaimed.

    .venv/bin/python bench/slots.py [--count 50] [--json]

Runs the operator with a services.yaml whose pool holds --count slots, creates
--count DevSlots at once, and prints the seconds until every one has a slot
number, until every one is Ready, and, after deleting them all, until every
slot environment and namespace is gone (reclaimed by the garbage collector).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, cluster, install, operator, print_table, ready, wait


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    config = yaml.safe_load((ROOT / "services.yaml").read_text())
    config["slots"]["maxSlots"] = max(args.count, 50)
    config_file = Path(tempfile.mkdtemp(prefix="chatenv-bench-")) / "services.yaml"
    config_file.write_text(yaml.safe_dump(config))
    repo = f"bench/r{uuid.uuid4().hex[:6]}"
    label = repo.replace("/", ".")
    with cluster() as c:
        install(c)
        with operator(c, config_file) as op:
            slots = [{"apiVersion": "chatenv.dev/v1alpha1", "kind": "DevSlot",
                      "metadata": {"name": f"bench-{label.replace('.', '-')}-{i}",
                                   "labels": {"chatenv.dev/repository": label}},
                      "spec": {"repository": repo, "issue": i}} for i in range(1, args.count + 1)]
            before = op.requests()
            start = time.monotonic()
            c.kubectl("create", "-f", "-",
                      stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": slots}))

            def listed() -> list[dict]:  # type: ignore[type-arg]
                return c.json("get", "devslots", "-l", f"chatenv.dev/repository={label}")["items"]

            wait(lambda: sum(1 for d in listed() if (d.get("status") or {}).get("slot"))
                 == args.count, 600, "all allocated")
            t_alloc = time.monotonic() - start
            wait(lambda: sum(1 for d in listed() if ready(d)) == args.count, 1200, "all Ready",
                 interval=0.5)
            t_ready = time.monotonic() - start
            numbers = sorted(d["status"]["slot"] for d in listed())
            assert numbers == list(range(1, args.count + 1)), numbers
            requests = op.requests() - before
            rss = op.peak_rss_mib()
            start = time.monotonic()
            c.kubectl("delete", "devslots", "-l", f"chatenv.dev/repository={label}",
                      "--wait=false")
            wait(lambda: not c.json("get", "chatenvironments", "-l",
                                    f"chatenv.dev/repository={label}")["items"], 600,
                 "environments reclaimed", interval=0.5)
            t_envs = time.monotonic() - start
            wait(lambda: not c.json("get", "namespaces", "-l",
                                    f"chatenv.dev/repository={label}")["items"], 900,
                 "namespaces reclaimed", interval=1)
            t_reclaimed = time.monotonic() - start
    row = {"devslots": args.count, "allocated_s": round(t_alloc, 2),
           "ready_s": round(t_ready, 2), "requests_per_slot": round(requests / args.count, 1),
           "peak_rss_mib": round(rss, 1), "envs_gone_s": round(t_envs, 2),
           "namespaces_gone_s": round(t_reclaimed, 2)}
    if args.json:
        print(json.dumps(row, indent=2))
    else:
        print_table([row])
    return 0


if __name__ == "__main__":
    sys.exit(main())
