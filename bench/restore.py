"""How long a DevSlot takes to be Ready with its data: empty, fixtures, and a snapshot of
an ai-staging environment of a given size.

    .venv/bin/python bench/restore.py [--users 1000] [--messages 20000] \
        [--modes empty,fixtures,snapshot] [--json]

Needs a cluster where environments really run (the one `hack/up` leaves running, or
KUBECONFIG's with chatenv installed). It makes an `ai-staging` environment (or uses the
one there is), fills it with --users users and --messages messages of 40-200 characters
(straight into its PostgreSQL: the nickname keys are computed here as the service
computes them), then opens one DevSlot per mode with `chatenv ensure-ready --data MODE`.
Printed per mode, in seconds:

- `ready_s`: from starting `ensure-ready` until it returned (the slot Ready: its data in);
- `restore_s` (snapshot): the restore Job's own run, from its start to its completion
  (its status' startTime and completionTime: whole seconds);
- `first_200_s`: until the slot's GET /api/messages answered 200.

Everything it creates is deleted afterwards (the ai-staging environment only if it made it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from time_to_url import KUBECONFIG, kubectl
from wake import get

from chat_service.nicknames import key

PY = sys.executable
CHATENV = str(Path(PY).parent / "chatenv")
REPOSITORY = "bench/restore"
STAGING = "ai-staging"


def chatenv(*args: str, timeout: float = 900) -> dict[str, object]:
    env = dict(os.environ, KUBECONFIG=KUBECONFIG)
    res = subprocess.run([CHATENV, *args, "--repository", REPOSITORY], capture_output=True,
                         text=True, env=env, timeout=timeout)
    if res.returncode != 0:
        sys.exit(f"chatenv {' '.join(args)}: {res.stdout}{res.stderr}")
    return dict(json.loads(res.stdout))


def staging(users: int, messages: int) -> tuple[str, bool]:
    """The ai-staging environment's namespace, filled; whether this run made it."""
    made = f"chatenvironment.chatenv.dev/{STAGING}" not in kubectl(
        "get", "chatenv", "-o", "name").split()
    if made:
        kubectl("apply", "-f", "-", stdin=json.dumps({
            "apiVersion": "chatenv.dev/v1alpha1", "kind": "ChatEnvironment",
            "metadata": {"name": STAGING},
            "spec": {"stage": "ai-staging", "chat": {"replicas": 1},
                     "jaeger": {"enabled": False}}}))
    kubectl("wait", "--for=condition=Ready", f"chatenv/{STAGING}", "--timeout=600s")
    ns = json.loads(kubectl("get", "chatenv", STAGING, "-o", "json"))["status"]["namespace"]
    rng = random.Random(7)
    rows = "\n".join(f"bench{i}\t{key(f'bench{i}')}" for i in range(users))
    # Numbers only in the statements: nothing here comes from outside.
    sql = (
        "CREATE TEMP TABLE u (nickname text, nickname_key text);\n"  # noqa: S608
        f"COPY u FROM STDIN;\n{rows}\n\\.\n"
        "INSERT INTO chat_user (nickname, nickname_key, password_hash) "
        "SELECT nickname, nickname_key, 'not a hash' FROM u ON CONFLICT DO NOTHING;\n"
        "INSERT INTO chat_message (user_id, text) "
        "SELECT (SELECT min(id) FROM chat_user) + g % (SELECT count(*) FROM chat_user), "
        f"repeat('lorem ipsum ', {rng.randint(4, 16)} + g % 5) "
        f"FROM generate_series(1, {messages}) g;\n")
    have = int(kubectl("exec", "-n", ns, "postgres-0", "--", "psql", "-U", "chat", "-d", "chat",
                       "-tAc", "SELECT count(*) FROM chat_message").strip())
    if have < messages:
        kubectl("exec", "-i", "-n", ns, "postgres-0", "--", "psql", "-U", "chat", "-d", "chat",
                "-q", "-v", "ON_ERROR_STOP=1", stdin=sql)
    return ns, made


def seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (datetime.fromisoformat(end.replace("Z", "+00:00"))
            - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()


def one(mode: str, issue: int) -> dict[str, object]:
    started = time.monotonic()
    slot = chatenv("ensure-ready", "--issue", str(issue), "--data", mode, "--timeout", "900")
    ready = time.monotonic() - started
    while get(f"{slot['url']}/api/messages") != 200:
        time.sleep(0.1)
    out: dict[str, object] = {"mode": mode, "ready_s": round(ready, 1),
                              "first_200_s": round(time.monotonic() - started, 1),
                              "state": (slot.get("data") or {}).get("state"),  # type: ignore[attr-defined]
                              "namespace": slot["namespace"]}
    if mode == "snapshot":
        job = json.loads(kubectl("get", "job", "data-restore", "-n", str(slot["namespace"]),
                                 "-o", "json"))["status"]
        out["restore_s"] = seconds(job.get("startTime"), job.get("completionTime"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--modes", default="empty,fixtures,snapshot")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    modes = args.modes.split(",")
    made = False
    if "snapshot" in modes:
        _, made = staging(args.users, args.messages)
    rows = []
    try:
        for i, mode in enumerate(modes):
            issue = 900_000 + random.randint(0, 99_999) * 10 + i
            namespace = ""
            try:
                row = one(mode, issue)
                namespace = str(row.pop("namespace"))
                rows.append({**row, "load": round(os.getloadavg()[0], 2)})
            finally:
                chatenv("cleanup", "--issue", str(issue))
                # The next mode takes the same slot number: measure it, not the wait for
                # this one's namespace to be deleted.
                while namespace and kubectl("get", "namespace", namespace,
                                            "--ignore-not-found", "-o", "name").strip():
                    time.sleep(1)
            if not args.json:
                print("  ".join(f"{k}={v}" for k, v in rows[-1].items()), flush=True)
    finally:
        if made:
            kubectl("delete", "chatenv", STAGING, "--wait=false")
    if args.json:
        print(json.dumps({"users": args.users, "messages": args.messages, "rows": rows},
                         indent=2))


if __name__ == "__main__":
    main()
