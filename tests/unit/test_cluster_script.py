"""hack/cluster.py's failure paths: clear messages and non-zero exits, no processes left."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = [sys.executable, str(ROOT / "hack" / "cluster.py")]


def run(*args: str, cache: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if cache is not None:
        env["CHATENV_CACHE"] = str(cache)
    return subprocess.run([*CLUSTER, *args], capture_output=True, text=True, env=env,
                          timeout=60)


def test_missing_binaries_are_named(tmp_path: Path) -> None:
    res = run("up", "--fake-nodes", "--no-build", "--state-dir", str(tmp_path / "state"),
              cache=tmp_path / "empty-cache")
    assert res.returncode == 1
    assert "binaries missing (run `hack/cluster.py build`)" in res.stderr
    assert "kube-apiserver" in res.stderr


def test_taken_port_is_refused(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = run("up", "--fake-nodes", "--no-build", "--port", str(port),
                  "--state-dir", str(tmp_path / "st"), cache=tmp_path / "empty-cache")
    assert res.returncode == 1
    assert f"port {port} for kube-apiserver is already taken" in res.stderr


def test_down_is_safe_twice_and_env_needs_a_cluster(tmp_path: Path) -> None:
    for _ in range(2):
        res = run("down", "--state-dir", str(tmp_path / "none"))
        assert res.returncode == 0
        assert "nothing running" in res.stderr
    res = run("env", "--state-dir", str(tmp_path / "none"))
    assert res.returncode == 1
    assert "no cluster running" in res.stderr
    assert run("status", "--state-dir", str(tmp_path / "none")).returncode == 1


def test_versions_are_pinned_in_the_wrapper_modules() -> None:
    import json

    versions = json.loads(run("versions").stdout)
    assert versions["kubernetes"].startswith("v1.35.")
    assert versions["etcd"].startswith("v3.6.")
    go_mod = (ROOT / "hack" / "k8s" / "go.mod").read_text()
    staging = [line.split()[0] for line in go_mod.splitlines() if "=> k8s.io/" in line]
    assert len(staging) >= 30
    assert all(f"=> {m} v0.35." in go_mod for m in staging)
