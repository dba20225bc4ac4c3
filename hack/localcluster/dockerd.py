"""Debian's dockerd for building the local cluster's images, run only while needed.

Its data lives in the cache (`~/.cache/chatenv/docker`: the layer and build caches
survive), it makes no bridge, iptables rules or forwarding of its own, and whatever it
mounted or created on the host is removed when it stops. This module does I/O
(processes, mounts).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from . import hoststate
from .processes import ClusterError
from .versions import CACHE_ROOT

DOCKER = "/usr/bin/docker"  # Debian's client, the same release as its dockerd


class Docker:
    """Debian's dockerd, started on first use and stopped on exit."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.existed: list[str] = []
        self.cgroup_existed = True

    @property
    def host(self) -> str:
        return f"unix://{self.run_dir / 'docker.sock'}"

    def __enter__(self) -> Docker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start(self) -> None:
        if self.proc is not None:
            return
        if not shutil.which("dockerd") or not Path(DOCKER).exists():
            raise ClusterError("dockerd is needed to build images: install the Debian package "
                               "docker.io (hack/setup does)")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # A dockerd killed before it could stop leaves its data root mounted on itself.
        hoststate.unmount_under([CACHE_ROOT / "docker"])
        self.existed = hoststate.existing(hoststate.DOCKER_PATHS)
        self.cgroup_existed = bool(list(Path("/sys/fs/cgroup").glob("*/docker")))
        log_file = open(self.run_dir / "dockerd.log", "ab")  # noqa: SIM115 - the child's
        self.proc = subprocess.Popen([
            "dockerd", "--data-root", str(CACHE_ROOT / "docker"),
            "--exec-root", str(self.run_dir / "exec"), "-H", self.host,
            "--pidfile", str(self.run_dir / "docker.pid"),
            "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-forward=false",
            "--ip-masq=false", "--log-level=warn",
        ], stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        log_file.close()
        deadline = time.monotonic() + 60
        while self.docker("version", check=False).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = (self.run_dir / "dockerd.log").read_text(errors="replace")[-2000:]
                raise ClusterError(f"dockerd did not start:\n{tail}")
            time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        # Nothing of it stays: its exec root's mounts, the paths and cgroups it made.
        hoststate.unmount_under([self.run_dir, CACHE_ROOT / "docker"])
        shutil.rmtree(self.run_dir, ignore_errors=True)
        hoststate.remove_new_paths(self.existed, hoststate.DOCKER_PATHS)
        if not self.cgroup_existed:
            hoststate.remove_cgroups("docker")

    def docker(self, *args: str, check: bool = True, **kw: object) -> subprocess.CompletedProcess[
            str]:
        env = dict(os.environ, DOCKER_HOST=self.host, DOCKER_BUILDKIT="1")
        res: subprocess.CompletedProcess[str] = subprocess.run(  # type: ignore[call-overload]
            [DOCKER, *args], env=env, text=True, capture_output=True, check=check, **kw)
        return res

    def has(self, ref: str) -> bool:
        self._start()
        return self.docker("image", "inspect", ref, check=False).returncode == 0

    def build(self, ref: str, dockerfile: Path, context: Path, args: dict[str, str]) -> None:
        self._start()
        cmd = ["build", "--network", "host", "-f", str(dockerfile), "-t", ref]
        for k, v in args.items():
            cmd += ["--build-arg", f"{k}={v}"]
        res = self.docker(*cmd, str(context), check=False)
        if res.returncode != 0:
            raise ClusterError(f"building {ref} failed:\n{(res.stdout + res.stderr)[-4000:]}")

    def import_tree(self, ref: str, tree: Path, env: dict[str, str]) -> None:
        self._start()
        changes: list[str] = []
        for k, v in env.items():
            changes += ["--change", f"ENV {k}={v}"]
        tar = subprocess.Popen(["tar", "-C", str(tree), "--numeric-owner", "-cf", "-", "."],
                               stdout=subprocess.PIPE)
        env_ = dict(os.environ, DOCKER_HOST=self.host)
        res = subprocess.run([DOCKER, "import", *changes, "-", ref], stdin=tar.stdout, env=env_,
                             capture_output=True, text=True)
        tar.wait()
        if res.returncode != 0 or tar.returncode != 0:
            raise ClusterError(f"importing the base tree failed: {res.stderr}")

    def save_into(self, refs: list[str], load: Callable[[int], None]) -> None:
        """Stream `docker save` of ``refs`` into ``load`` (which reads a file descriptor)."""
        self._start()
        env = dict(os.environ, DOCKER_HOST=self.host)
        proc = subprocess.Popen([DOCKER, "save", *refs], stdout=subprocess.PIPE, env=env)
        assert proc.stdout is not None
        try:
            load(proc.stdout.fileno())
        finally:
            proc.stdout.close()
            if proc.wait() != 0:
                raise ClusterError(f"docker save {' '.join(refs)} failed")
