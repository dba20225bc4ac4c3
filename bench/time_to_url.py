"""How long until a user can chat: from a request for an environment to its URL's first 200.

    .venv/bin/python bench/time_to_url.py [--slots 5] [--json]

Needs a cluster where environments really run and their Ingress serves: the one
`hack/up` leaves running (a real node), or the cluster KUBECONFIG names with chatenv
installed. Prints, in seconds:

- ChatEnvironment: from `kubectl apply` to the first `200` of `GET /api/messages`
  through its Ingress URL (and when its Ready condition turned True);
- DevSlot: from starting `chatenv ensure-ready` to the first `200` of the slot URL's
  `GET /api/messages` (and when ensure-ready returned);
- --slots DevSlots at once: the same for each, started together.

Everything it creates is deleted afterwards (and the time until the namespaces are gone
is printed too).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CHATENV = str(Path(PY).parent / "chatenv")
REPOSITORY = "bench/time-to-url"


def kubeconfig() -> str:
    given = os.environ.get("KUBECONFIG")
    if given:
        return given
    info = json.loads(subprocess.run([PY, str(ROOT / "hack" / "cluster.py"), "info"],
                                     capture_output=True, text=True, check=True).stdout)
    if not info["running"] or info["mode"] != "real":
        sys.exit("no cluster: run hack/up first (or set KUBECONFIG)")
    return str(info["kubeconfig"])


KUBECONFIG = kubeconfig()
KUBECTL = subprocess.run([PY, str(ROOT / "hack" / "cluster.py"), "kubectl"],
                         capture_output=True, text=True, check=True).stdout.strip()


def kubectl(*args: str, stdin: str | None = None) -> str:
    return subprocess.run([KUBECTL, "--kubeconfig", KUBECONFIG, *args], input=stdin,
                          capture_output=True, text=True, check=True).stdout


def first_200(url: str, started: float, timeout: float = 600) -> float:
    """Seconds from ``started`` until ``url`` answers 200 (*.localhost resolves to loopback)."""
    host = url.split("://", 1)[1].split("/", 1)[0]
    name, _, port = host.partition(":")
    target = url.replace(host, f"127.0.0.1:{port}" if port else "127.0.0.1", 1) \
        if name.endswith(".localhost") else url
    request = urllib.request.Request(target, headers={"Host": host})  # noqa: S310 - http(s)
    while time.monotonic() - started < timeout:
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310
                if resp.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer 200 within {timeout:.0f} s")


def wait_url(kind: str, name: str, started: float) -> str:
    while True:
        out = kubectl("get", kind, name, "-o", "jsonpath={.status.url}")
        if out:
            return out
        if time.monotonic() - started > 600:
            raise TimeoutError(f"{kind}/{name} has no URL")
        time.sleep(0.2)


def chat_environment() -> dict[str, float]:
    name = f"bench-{uuid.uuid4().hex[:6]}"
    manifest = (f"apiVersion: chatenv.dev/v1alpha1\nkind: ChatEnvironment\n"
                f"metadata: {{name: {name}}}\nspec:\n  stage: dev\n  namespace: {name}\n"
                f"  host: {name}.dev.chat.localhost\n")
    started = time.monotonic()
    kubectl("apply", "-f", "-", stdin=manifest)
    try:
        url = wait_url("chatenv", name, started)
        serving = first_200(f"{url}/api/messages", started)
        kubectl("wait", "--for=condition=Ready", f"chatenv/{name}", "--timeout=600s")
        ready = time.monotonic() - started
    finally:
        kubectl("delete", "chatenv", name, "--wait=false")
    return {"first_200_s": round(serving, 1), "ready_s": round(ready, 1)}


def devslot(issue: int) -> dict[str, float]:
    env = dict(os.environ, KUBECONFIG=KUBECONFIG)
    started = time.monotonic()
    res = subprocess.run([CHATENV, "ensure-ready", "--issue", str(issue), "--repository",
                          REPOSITORY, "--timeout", "600"], capture_output=True, text=True,
                         env=env)
    returned = time.monotonic() - started
    if res.returncode != 0:
        raise RuntimeError(f"ensure-ready failed ({res.returncode}): {res.stderr}")
    url = json.loads(res.stdout)["url"]
    serving = first_200(f"{url}/api/messages", started)
    return {"ensure_ready_s": round(returned, 1), "first_200_s": round(serving, 1)}


def cleanup(issues: list[int]) -> float:
    env = dict(os.environ, KUBECONFIG=KUBECONFIG)
    started = time.monotonic()
    namespaces = [ns for ns in kubectl("get", "namespaces", "-o", "name").split()
                  if "chat-dev-" in ns]
    for issue in issues:
        subprocess.run([CHATENV, "cleanup", "--issue", str(issue), "--repository", REPOSITORY],
                       capture_output=True, env=env, check=False)
    while True:
        left = [ns for ns in kubectl("get", "namespaces", "-o", "name").split()
                if ns in namespaces and "chat-dev-" in ns]
        if not left or time.monotonic() - started > 600:
            return time.monotonic() - started
        time.sleep(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slots", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    results: dict[str, object] = {"load_average_at_start": round(load, 2)}
    results["chatenvironment"] = chat_environment()
    base = 100_000 + uuid.uuid4().int % 800_000
    results["devslot"] = devslot(base)
    cleanup([base])
    issues = [base + 1 + i for i in range(args.slots)]
    started = time.monotonic()
    with ThreadPoolExecutor(args.slots) as pool:
        each = list(pool.map(devslot, issues))
    results[f"devslots_{args.slots}_at_once"] = {
        "each": each, "all_serving_s": round(time.monotonic() - started, 1)}
    results["cleanup_namespaces_gone_s"] = round(cleanup(issues), 1)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"load average at start: {results['load_average_at_start']}")
    print(f"ChatEnvironment: first 200 after {results['chatenvironment']['first_200_s']} s, "  # type: ignore[index]
          f"Ready after {results['chatenvironment']['ready_s']} s")  # type: ignore[index]
    print(f"DevSlot: ensure-ready returned after {results['devslot']['ensure_ready_s']} s, "  # type: ignore[index]
          f"first 200 after {results['devslot']['first_200_s']} s")  # type: ignore[index]
    for i, r in enumerate(each):
        print(f"DevSlot {i + 1} of {args.slots} at once: ensure-ready {r['ensure_ready_s']} s, "
              f"first 200 {r['first_200_s']} s")
    print(f"{args.slots} DevSlots at once: all serving after "
          f"{results[f'devslots_{args.slots}_at_once']['all_serving_s']} s")  # type: ignore[index]
    print(f"after cleanup, their namespaces were gone in {results['cleanup_namespaces_gone_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
