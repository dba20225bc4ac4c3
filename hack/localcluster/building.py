"""Go builds of every binary the local cluster runs, cached by version.

Each build goes into a scratch directory that is renamed into place when it
succeeds, so an interrupted build never leaves half a cache. Long builds print
a progress line every 30 seconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .processes import ClusterError, log
from .versions import CACHE_ROOT, HACK, K8S_TOOLS, Binaries

KWOK_STAGES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
)

def _go_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, CGO_ENABLED="0", **extra)
    env.setdefault("GOFLAGS", "-buildvcs=false")
    return env


def _run_go(what: str, cmd: list[str], cwd: Path, **env: str) -> None:
    """Run a `go build -v`/`go install -v`, printing a progress line every 30 s."""
    if not shutil.which("go"):
        raise ClusterError(f"the Go toolchain is needed to build {what}: `go` not found")
    log(f"building {what}")
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=_go_env(**env), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    last_report = started
    tail: list[str] = []
    for compiled, line in enumerate(proc.stdout, start=1):
        tail = [*tail[-40:], line.rstrip()]
        if time.monotonic() - last_report >= 30:
            last_report = time.monotonic()
            log(f"  {what}: {compiled} packages, {int(last_report - started)} s")
    if proc.wait() != 0:
        raise ClusterError(f"building {what} failed:\n" + "\n".join(tail))
    log(f"built {what} in {int(time.monotonic() - started)} s")


def _atomic(target_dir: Path, build: Callable[[Path], None]) -> None:
    target_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=target_dir.name + ".", dir=target_dir.parent))
    try:
        build(scratch)
        if target_dir.exists():
            shutil.rmtree(target_dir)
        scratch.rename(target_dir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _wrapper_build(what: str, wrapper: str, package: str, out: Path,
                   ldflags: str = "-s -w", tags: str = "") -> None:
    cmd = ["go", "build", "-v", "-trimpath", "-ldflags", ldflags, "-o", str(out)]
    if tags:
        cmd += ["-tags", tags]
    _run_go(what, [*cmd, package], HACK / wrapper)


def _go_install(what: str, out: Path, packages: list[str], ldflags: str = "-s -w",
                tags: str = "") -> None:
    cmd = ["go", "install", "-v", "-trimpath", "-ldflags", ldflags]
    if tags:
        cmd += ["-tags", tags]
    _run_go(what, [*cmd, *packages], Path(tempfile.gettempdir()), GOBIN=str(out))


def _module_dir(module: str, version: str) -> Path:
    res = subprocess.run(["go", "list", "-m", "-f", "{{.Dir}}", f"{module}@{version}"],
                         env=_go_env(GOFLAGS="-mod=mod"), cwd=tempfile.gettempdir(),
                         capture_output=True, text=True, check=True)
    return Path(res.stdout.strip())


def build_kubernetes(b: Binaries) -> None:
    v = b.versions.kubernetes
    minor = v.lstrip("v").split(".")[1]
    ldflags = " ".join([
        "-s -w",
        f"-X k8s.io/component-base/version.gitVersion={v}",
        "-X k8s.io/component-base/version.gitMajor=1",
        f"-X k8s.io/component-base/version.gitMinor={minor}",
        "-X k8s.io/component-base/version.gitTreeState=clean",
        f"-X k8s.io/client-go/pkg/version.gitVersion={v}",
    ])

    def build(out: Path) -> None:
        _run_go(f"Kubernetes {v} ({', '.join(K8S_TOOLS)}; 5-10 minutes on 2 cores)",
                ["go", "build", "-v", "-trimpath", "-tags", "selinux,notest,grpcnotrace",
                 "-ldflags", ldflags, "-o", str(out) + "/",
                 *(f"k8s.io/kubernetes/cmd/{n}" for n in K8S_TOOLS)],
                HACK / "k8s")

    _atomic(b.dir("k8s"), build)


def build_etcd(b: Binaries) -> None:
    _atomic(b.dir("etcd"), lambda out: _wrapper_build(
        f"etcd {b.versions.etcd}", "etcd", "go.etcd.io/etcd/server/v3", out / "etcd"))


def build_kwok(b: Binaries) -> None:
    v = b.versions.kwok

    def build(out: Path) -> None:
        _go_install(f"kwok {v}", out, [f"sigs.k8s.io/kwok/cmd/kwok@{v}"])
        # kwok ships its stage configs in its module; take them from the module cache.
        stages = _module_dir("sigs.k8s.io/kwok", v) / "kustomize" / "stage"
        docs = [(stages / s).read_text() for s in KWOK_STAGES]
        (out / "stages.yaml").write_text("\n---\n".join(docs))

    _atomic(b.dir("kwok"), build)


def build_containerd(b: Binaries) -> None:
    v = b.versions.containerd
    mod = "github.com/containerd/containerd/v2"
    _atomic(b.dir("containerd"), lambda out: _go_install(
        f"containerd {v}", out,
        [f"{mod}/cmd/{n}@{v}" for n in ("containerd", "containerd-shim-runc-v2", "ctr")],
        ldflags=f"-s -w -X {mod}/version.Version={v}", tags="no_btrfs,no_devmapper,no_zfs"))


def build_coredns(b: Binaries) -> None:
    v = b.versions.coredns
    _atomic(b.dir("coredns"), lambda out: _go_install(
        f"CoreDNS {v}", out, [f"github.com/coredns/coredns@{v}"]))


def build_local_path_provisioner(b: Binaries) -> None:
    v = b.versions.local_path_provisioner
    _atomic(b.dir("local-path-provisioner"), lambda out: _go_install(
        f"local-path-provisioner {v}", out, [f"github.com/rancher/local-path-provisioner@{v}"]))


def build_traefik(b: Binaries) -> None:
    v = b.versions.traefik
    _atomic(b.dir("traefik"), lambda out: _wrapper_build(
        f"Traefik {v}", "traefik", "github.com/traefik/traefik/v3/cmd/traefik", out / "traefik",
        ldflags=f"-s -w -X github.com/traefik/traefik/v3/pkg/version.Version={v}"))


def build_jaeger(b: Binaries) -> None:
    v = b.versions.jaeger
    _atomic(b.dir("jaeger"), lambda out: _wrapper_build(
        f"Jaeger {v}", "jaeger", "github.com/jaegertracing/jaeger/cmd/jaeger", out / "jaeger"))


def build_kube_router(b: Binaries) -> None:
    v = b.versions.kube_router
    package = "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"
    _atomic(b.dir("kube-router"), lambda out: _wrapper_build(
        f"kube-router {v}", "kube-router", package, out / "kube-router"))


BUILDERS: dict[str, Callable[[Binaries], None]] = {
    "k8s": build_kubernetes,
    "etcd": build_etcd,
    "kwok": build_kwok,
    "containerd": build_containerd,
    "coredns": build_coredns,
    "local-path-provisioner": build_local_path_provisioner,
    "traefik": build_traefik,
    "jaeger": build_jaeger,
    "kube-router": build_kube_router,
}


def build(b: Binaries, *, real_node: bool = True, fake_nodes: bool = True) -> None:
    """Build what is missing: the control plane, and the parts of each node mode asked for.

    Kubernetes (the longest build) goes in one lane and everything else in another: two
    `go build`s at once keep both cores busy while the other one downloads or links.
    """
    wanted: set[Path] = set()
    if real_node:
        wanted |= set(b.wanted(real_node=True))
    if fake_nodes:
        wanted |= set(b.wanted(real_node=False))
    missing = [c for c in BUILDERS
               if any(p.parent == b.dir(c) and not p.exists() for p in wanted)]
    lanes = [[c for c in missing if c == "k8s"], [c for c in missing if c != "k8s"]]

    def run(lane: list[str]) -> None:
        for component in lane:
            BUILDERS[component](b)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(run, lane) for lane in lanes if lane]:
            future.result()
    log(f"binaries ready under {CACHE_ROOT}")
