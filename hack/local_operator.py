#!/usr/bin/env python3
"""Run the operator on this machine against a cluster, as its ServiceAccount.

    hack/local_operator.py start --kubectl PATH [--state-dir DIR]
    hack/local_operator.py stop  [--state-dir DIR]

The operator authenticates with a TokenRequest token of the `chatenv-operator`
ServiceAccount that `deploy/` creates, so it has exactly the rights deploy/
grants, just as in the cluster. Used by hack/up, where no image can be built
or pulled (the local control plane's nodes are kwok's, and run nothing).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

HACK = Path(__file__).resolve().parent
ROOT = HACK.parent
sys.path.insert(0, str(HACK))

from servers import free_port  # noqa: E402

DEFAULT_STATE = Path(tempfile.gettempdir()) / "chatenv-operator"


def service_account_kubeconfig(kubectl: Sequence[str], path: Path, *,
                               namespace: str = "chatenv-system",
                               account: str = "chatenv-operator", duration: str = "24h") -> Path:
    """A kubeconfig that authenticates as a ServiceAccount with a TokenRequest token.

    ``kubectl`` is the command that reaches the cluster (binary, and --kubeconfig if needed).
    """
    def run(*args: str) -> str:
        return subprocess.run([*kubectl, *args], capture_output=True, text=True,
                              check=True).stdout

    token = run("create", "token", account, "-n", namespace, f"--duration={duration}").strip()
    view = json.loads(run("config", "view", "--raw", "--minify", "-o", "json"))
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": view["clusters"][0]["cluster"]}],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": account}}],
    }))
    path.chmod(0o600)
    return path


def running(state: Path) -> int | None:
    try:
        pid = int((state / "operator.pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"chatenv_operator" in cmdline else None


def start(kubectl: str, state: Path, config: Path = ROOT / "services.yaml") -> int:
    if running(state):
        print(f"operator already running (log: {state / 'operator.log'})", file=sys.stderr)
        return 0
    state.mkdir(parents=True, exist_ok=True)
    kubeconfig = state / "kubeconfig"
    service_account_kubeconfig([kubectl], kubeconfig)
    health, metrics = free_port(), free_port()
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "CHATENV_NAMESPACE": "chatenv-system",
           "CHATENV_CONFIG": str(config), "CHATENV_HEALTH_PORT": str(health),
           "CHATENV_METRICS_PORT": str(metrics)}
    with open(state / "operator.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "chatenv_operator", "run"], env=env,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=ROOT)
    (state / "operator.pid").write_text(str(proc.pid))
    (state / "ports.json").write_text(json.dumps({"health": health, "metrics": metrics}))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            print((state / "operator.log").read_text()[-3000:], file=sys.stderr)
            print("the operator exited during start-up", file=sys.stderr)
            return 1
        with contextlib.suppress(OSError), urllib.request.urlopen(
                f"http://127.0.0.1:{health}/healthz", timeout=2):
            print(f"operator running (pid {proc.pid}); log: {state / 'operator.log'}; "
                  f"metrics: http://127.0.0.1:{metrics}/metrics", file=sys.stderr)
            return 0
        time.sleep(0.3)
    print("the operator did not become live within 60 s", file=sys.stderr)
    return 1


def stop(state: Path) -> int:
    pid = running(state)
    if pid is None:
        print("operator not running", file=sys.stderr)
        return 0
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if running(state) is None:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
    print(f"operator stopped (pid {pid})", file=sys.stderr)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["start", "stop"])
    parser.add_argument("--kubectl", default="kubectl")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE)
    parser.add_argument("--config", type=Path, default=ROOT / "services.yaml",
                        help="services.yaml for the operator")
    args = parser.parse_args()
    if args.command == "start":
        return start(args.kubectl, args.state_dir, args.config)
    return stop(args.state_dir)


if __name__ == "__main__":
    sys.exit(main())
