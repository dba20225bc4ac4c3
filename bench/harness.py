"""Shared by the operator benchmarks: a cluster, deploy/ installed, the operator process,
and a poller that reads the cluster in-process.

Uses the cluster $KUBECONFIG names, or starts the local control plane in a
temporary directory (and stops it afterwards). The operator runs as a local
process with its ServiceAccount's token (hack/local_operator.py), so its
requests are countable from its metrics endpoint and its memory from /proc.
Progress is polled through one in-process API client (``Cluster.api``), the same
for the operator's runs and for the floor's, so no process start-up of a kubectl
per poll weighs on either measurement.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatenv_operator.kinds import Kind
from chatenv_operator.kube import Kube

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


@dataclass
class Cluster:
    kubeconfig: Path
    kubectl_bin: str
    own: bool = False
    """Started by this benchmark (so it may add fake nodes to it)."""

    @functools.cached_property
    def api(self) -> Kube:
        return Kube.from_environment(str(self.kubeconfig))

    def names(self, kind: Kind, label_selector: str | None = None) -> list[tuple[str, str]]:
        """(namespace, name) of every object of ``kind``: metadata only, a light poll."""
        query = {"labelSelector": label_selector} if label_selector else {}
        _, url, headers, _, _ = self.api.api.param_serialize(
            "GET", kind.path(), query_params=list(query.items()),
            header_params={"Accept": "application/json;as=PartialObjectMetadataList;"
                                     "g=meta.k8s.io;v=v1"}, auth_settings=["BearerToken"])
        response = self.api.api.call_api("GET", url, header_params=headers,
                                         _request_timeout=60)
        response.read()
        items = json.loads(response.data)["items"] or []
        return [(i["metadata"].get("namespace", ""), i["metadata"]["name"]) for i in items]

    def kubectl(self, *args: str, stdin: str | None = None,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.kubectl_bin, "--kubeconfig", str(self.kubeconfig), *args],
                              input=stdin, capture_output=True, text=True, check=check)

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)


@contextlib.contextmanager
def cluster() -> Iterator[Cluster]:
    kubectl = subprocess.run([PY, str(ROOT / "hack" / "cluster.py"), "kubectl"],
                             capture_output=True, text=True, check=True).stdout.strip()
    given = os.environ.get("KUBECONFIG")
    if given:
        yield Cluster(Path(given), kubectl)
        return
    state = Path(tempfile.mkdtemp(prefix="chatenv-bench-"))
    subprocess.run([PY, str(ROOT / "hack" / "cluster.py"), "up", "--fake-nodes", "--no-build",
                    "--state-dir", str(state)], check=True, stdout=subprocess.DEVNULL)
    try:
        yield Cluster(state / "kubeconfig", kubectl, own=True)
    finally:
        subprocess.run([PY, str(ROOT / "hack" / "cluster.py"), "down", "--state-dir",
                        str(state)], stderr=subprocess.DEVNULL)


def install(c: Cluster) -> None:
    c.kubectl("apply", "--server-side", "--force-conflicts", "-k", str(ROOT / "deploy"))
    c.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd",
              "-l", "app.kubernetes.io/part-of=chatenv")
    c.kubectl("scale", "deployment/chatenv-operator", "-n", "chatenv-system", "--replicas=0")


@dataclass
class Operator:
    state: Path
    env: dict[str, str]

    @property
    def pid(self) -> int:
        return int((self.state / "operator.pid").read_text())

    def metrics(self) -> dict[str, float]:
        port = json.loads((self.state / "ports.json").read_text())["metrics"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        return {k: float(v) for k, v in (line.rsplit(" ", 1) for line in text.splitlines()
                                         if line and not line.startswith("#"))}

    def requests(self) -> float:
        return sum(v for k, v in self.metrics().items()
                   if k.startswith("chatenv_api_requests_total"))

    def peak_rss_mib(self) -> float:
        """The most memory the process ever held (VmHWM)."""
        return self._status_mib("VmHWM:")

    def rss_mib(self) -> float:
        """The memory it holds now (VmRSS)."""
        return self._status_mib("VmRSS:")

    def _status_mib(self, field: str) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) / 1024
        return float("nan")


@contextlib.contextmanager
def operator(c: Cluster, config: Path | None = None) -> Iterator[Operator]:
    state = Path(tempfile.mkdtemp(prefix="chatenv-bench-op-"))
    args = [PY, str(ROOT / "hack" / "local_operator.py"), "--kubectl", c.kubectl_bin,
            "--state-dir", str(state)]
    if config:
        args += ["--config", str(config)]
    env = {**os.environ, "KUBECONFIG": str(c.kubeconfig)}
    subprocess.run([*args, "start"], check=True, env=env)
    try:
        yield Operator(state, env)
    finally:
        subprocess.run([*args, "stop"], env=env, stderr=subprocess.DEVNULL)


def wait(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.2
         ) -> float:
    """Seconds until ``predicate`` held (raises after ``timeout``)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached within {timeout} s")


def ready(obj: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def load_average() -> float:
    """The machine's 1-minute load average, to print beside the figures."""
    return os.getloadavg()[0]


def print_table(rows: list[dict[str, Any]]) -> None:
    keys = list(rows[0])
    widths = [max(len(str(k)), *(len(str(r[k])) for r in rows)) for k in keys]
    print("  ".join(str(k).ljust(w) for k, w in zip(keys, widths, strict=True)))
    for r in rows:
        print("  ".join(str(r[k]).ljust(w) for k, w in zip(keys, widths, strict=True)))
