"""How long a sleeping environment takes to answer again: from the first request to the
first 200 of GET /api/messages.

    .venv/bin/python bench/wake.py [--rounds 3] [--idle 20s] [--replicas 1] [--json]

Needs a cluster where environments really run and their Ingress serves: the one
`hack/up` leaves running (a real node), or the cluster KUBECONFIG names with chatenv
installed. It creates one ChatEnvironment (stage dev, its own host, Jaeger off) with a
short idle window, and for each round waits until it sleeps (no pod left), then sends
one request for its page (the visit that wakes it) and polls GET /api/messages through
the Ingress (marked as a background request, so the polling itself wakes nothing) until
the first 200. Printed per round, in seconds from that first request:

- `waker_s`: the waker's page answered (503, "is waking up");
- `scheduled_s`: the chat Deployment has replicas again (the operator acted);
- `first_200_s`: GET /api/messages answered 200 (the chat pods are Ready and the Ingress
  routes to them again).

The environment is deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import urllib.error
import urllib.request
import uuid

from time_to_url import kubectl


def get(url: str, background: bool = False, timeout: float = 5) -> int:
    """GET as a browser would (`*.localhost` is this machine); the status, 0 if no answer."""
    host = url.split("://", 1)[1].split("/", 1)[0]
    name, _, port = host.partition(":")
    target = url.replace(host, f"127.0.0.1:{port}" if port else "127.0.0.1", 1) \
        if name.endswith(".localhost") else url
    headers = {"Host": host, **({"X-Chat-Background": "1"} if background else {})}
    request = urllib.request.Request(target, headers=headers)  # noqa: S310 - http(s)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310
            return int(resp.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except (urllib.error.URLError, OSError):
        return 0


def wait(what: str, check: object, timeout: float, interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(interval)
    sys.exit(f"timed out waiting for {what}")


def status(name: str) -> dict[str, object]:
    return dict(json.loads(kubectl("get", "chatenv", name, "-o", "json")).get("status") or {})


def one_round(name: str, url: str, ns: str) -> dict[str, float]:
    wait(f"{name} to sleep", lambda: status(name).get("phase") == "Sleeping", 600, 1)
    wait(f"the pods of {ns} to go", lambda: not kubectl(
        "get", "pods", "-n", ns, "-o", "name").split(), 180, 1)
    started = time.monotonic()
    code = get(f"{url}/")
    out = {"waker_s": time.monotonic() - started}
    if code != 503:
        sys.exit(f"the sleeping environment answered {code}, not the waker's 503")
    while "scheduled_s" not in out or "first_200_s" not in out:
        if "scheduled_s" not in out and kubectl(
                "get", "deployment", "chat", "-n", ns, "-o",
                "jsonpath={.spec.replicas}").strip() not in ("", "0"):
            out["scheduled_s"] = time.monotonic() - started
        if get(f"{url}/api/messages", background=True) == 200:
            out["first_200_s"] = time.monotonic() - started
            out.setdefault("scheduled_s", out["first_200_s"])
        if time.monotonic() - started > 300:
            sys.exit("no 200 within 300 s of the first request")
        time.sleep(0.2)
    return {k: round(v, 2) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle", default="20s")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    name = f"wake-{uuid.uuid4().hex[:6]}"
    kubectl("apply", "-f", "-", stdin=json.dumps({
        "apiVersion": "chatenv.dev/v1alpha1", "kind": "ChatEnvironment",
        "metadata": {"name": name},
        "spec": {"stage": "dev", "namespace": f"chat-{name}", "host": f"{name}.dev.chat.localhost",
                 "idle": args.idle, "chat": {"replicas": args.replicas},
                 "jaeger": {"enabled": False}}}))
    rounds = []
    try:
        kubectl("wait", "--for=condition=Ready", f"chatenv/{name}", "--timeout=600s")
        st = status(name)
        url, ns = str(st["url"]), str(st["namespace"])
        for i in range(args.rounds):
            row = {"round": i + 1, **one_round(name, url, ns),
                   "load": round(os.getloadavg()[0], 2)}
            rounds.append(row)
            if not args.json:
                print("  ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    finally:
        kubectl("delete", "chatenv", name, "--wait=false")
    firsts = [r["first_200_s"] for r in rounds]
    summary = {"rounds": rounds, "first_200_s": {
        "min": min(firsts), "median": statistics.median(firsts), "max": max(firsts)},
        "cpus": os.cpu_count()}
    print(json.dumps(summary, indent=2) if args.json else
          f"first 200 after the first request: min {min(firsts):.1f} s, median "
          f"{statistics.median(firsts):.1f} s, max {max(firsts):.1f} s over {len(firsts)} "
          f"rounds ({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
