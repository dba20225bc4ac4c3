#!/usr/bin/env python3
"""A real local Kubernetes control plane for development and tests.

Builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl
and kwok from their Go modules (once; cached outside the repository, keyed by
version), then runs them as plain processes on 127.0.0.1:

    hack/cluster.py build            # build or reuse the cached binaries
    hack/cluster.py up               # start; prints `export KUBECONFIG=...`
    hack/cluster.py env              # print the export line again
    hack/cluster.py status           # which processes run, is the API ready
    hack/cluster.py down             # stop exactly what `up` started

kube-apiserver runs the way controller-runtime's envtest runs it (secure port,
RBAC, an admin client certificate in `system:masters`, service-account keys),
plus kube-controller-manager (garbage collector, namespace controller, the
host-path volume provisioner), kube-scheduler and kwok, which plays the
kubelet for fake Nodes so Pods become Running and Ready.

Standard library only: this runs before the project's dependencies exist.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HACK = Path(__file__).resolve().parent
sys.path.insert(0, str(HACK))

from servers import free_port  # noqa: E402

KWOK_VERSION = "v0.7.0"
CACHE_ROOT = Path(os.environ.get("CHATENV_CACHE", Path.home() / ".cache" / "chatenv"))
DEFAULT_STATE_DIR = Path(tempfile.gettempdir()) / "chatenv-cluster"
FAKE_NODES = 2
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
K8S_TOOLS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
KWOK_STAGES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
)


class ClusterError(Exception):
    """A failure with a message meant for the person at the terminal."""


def log(message: str) -> None:
    print(f"[cluster] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- versions


def _required_version(go_mod: Path, module: str) -> str:
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", go_mod.read_text(), re.M)
    if not match:
        raise ClusterError(f"{go_mod} does not require {module}")
    return match.group(1)


@dataclass(frozen=True)
class Versions:
    kubernetes: str
    etcd: str
    kwok: str

    @classmethod
    def pinned(cls) -> Versions:
        return cls(
            kubernetes=_required_version(HACK / "k8s" / "go.mod", "k8s.io/kubernetes"),
            etcd=_required_version(HACK / "etcd" / "go.mod", "go.etcd.io/etcd/server/v3"),
            kwok=KWOK_VERSION,
        )


@dataclass(frozen=True)
class Binaries:
    """Where each cached binary lives; directories are keyed by version."""

    versions: Versions

    @property
    def k8s_dir(self) -> Path:
        return CACHE_ROOT / f"k8s-{self.versions.kubernetes}"

    @property
    def etcd_dir(self) -> Path:
        return CACHE_ROOT / f"etcd-{self.versions.etcd}"

    @property
    def kwok_dir(self) -> Path:
        return CACHE_ROOT / f"kwok-{self.versions.kwok}"

    def path(self, name: str) -> Path:
        if name in K8S_TOOLS:
            return self.k8s_dir / name
        if name == "etcd":
            return self.etcd_dir / "etcd"
        if name == "kwok":
            return self.kwok_dir / "kwok"
        raise KeyError(name)

    @property
    def kwok_stages(self) -> Path:
        return self.kwok_dir / "stages.yaml"

    def missing(self) -> list[Path]:
        wanted = [self.path(n) for n in (*K8S_TOOLS, "etcd", "kwok")] + [self.kwok_stages]
        return [p for p in wanted if not p.exists()]


# --------------------------------------------------------------------------- build


def _go_env() -> dict[str, str]:
    env = dict(os.environ, CGO_ENABLED="0")
    env.setdefault("GOFLAGS", "-buildvcs=false")
    return env


def _run_go_build(what: str, cmd: list[str], cwd: Path) -> None:
    """Run a `go build -v`, printing a progress line every 30 s."""
    if not shutil.which("go"):
        raise ClusterError("the Go toolchain is needed to build the control plane: `go` not found")
    log(f"building {what} (the first build takes 10-25 minutes on 2 cores; cached after)")
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=_go_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    last_report = started
    tail: list[str] = []
    for compiled, line in enumerate(proc.stdout, start=1):
        tail = [*tail[-40:], line.rstrip()]
        if time.monotonic() - last_report >= 30:
            last_report = time.monotonic()
            log(f"  {what}: {compiled} packages compiled, {int(last_report - started)} s")
    if proc.wait() != 0:
        raise ClusterError(f"building {what} failed:\n" + "\n".join(tail))
    log(f"built {what} in {int(time.monotonic() - started)} s")


def _atomic_build(target_dir: Path, build: callable) -> None:  # type: ignore[valid-type]
    """Build into a scratch directory, then rename, so a killed build leaves no half cache."""
    target_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=target_dir.name + ".", dir=target_dir.parent))
    try:
        build(scratch)
        if target_dir.exists():
            shutil.rmtree(target_dir)
        scratch.rename(target_dir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def build(binaries: Binaries) -> None:
    v = binaries.versions
    minor = v.kubernetes.lstrip("v").split(".")[1]
    if not all(binaries.path(n).exists() for n in K8S_TOOLS):
        ldflags = " ".join(
            [
                "-s -w",
                f"-X k8s.io/component-base/version.gitVersion={v.kubernetes}",
                "-X k8s.io/component-base/version.gitMajor=1",
                f"-X k8s.io/component-base/version.gitMinor={minor}",
                "-X k8s.io/component-base/version.gitTreeState=clean",
                f"-X k8s.io/client-go/pkg/version.gitVersion={v.kubernetes}",
            ]
        )

        def build_k8s(out: Path) -> None:
            pkgs = [f"k8s.io/kubernetes/cmd/{n}" for n in K8S_TOOLS]
            _run_go_build(
                f"Kubernetes {v.kubernetes} ({', '.join(K8S_TOOLS)})",
                ["go", "build", "-v", "-p", "2", "-trimpath", "-tags", "selinux,notest,grpcnotrace",
                 "-ldflags", ldflags, "-o", str(out) + "/", *pkgs],
                HACK / "k8s",
            )

        _atomic_build(binaries.k8s_dir, build_k8s)

    if not binaries.path("etcd").exists():

        def build_etcd(out: Path) -> None:
            _run_go_build(
                f"etcd {v.etcd}",
                ["go", "build", "-v", "-trimpath", "-ldflags", "-s -w", "-o", str(out / "etcd"),
                 "go.etcd.io/etcd/server/v3"],
                HACK / "etcd",
            )

        _atomic_build(binaries.etcd_dir, build_etcd)

    if not (binaries.path("kwok").exists() and binaries.kwok_stages.exists()):

        def build_kwok(out: Path) -> None:
            env = dict(_go_env(), GOBIN=str(out))
            log(f"building kwok {v.kwok}")
            subprocess.run(
                ["go", "install", "-trimpath", "-ldflags", "-s -w",
                 f"sigs.k8s.io/kwok/cmd/kwok@{v.kwok}"],
                env=env, check=True,
            )
            # kwok ships its stage configs in its module; take them from the module cache.
            mod_dir = subprocess.run(
                ["go", "list", "-m", "-f", "{{.Dir}}", f"sigs.k8s.io/kwok@{v.kwok}"],
                env=dict(env, GOFLAGS="-mod=mod"), cwd=tempfile.gettempdir(),
                capture_output=True, text=True, check=True,
            ).stdout.strip()
            docs = [(Path(mod_dir) / "kustomize" / "stage" / s).read_text() for s in KWOK_STAGES]
            (out / "stages.yaml").write_text("\n---\n".join(docs))

        _atomic_build(binaries.kwok_dir, build_kwok)
    log(f"binaries ready under {CACHE_ROOT}")


# --------------------------------------------------------------------------- certificates


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_certificates(pki: Path) -> None:
    """A CA, the apiserver's serving cert, an admin client cert, service-account keys."""
    if not shutil.which("openssl"):
        raise ClusterError("`openssl` is needed to create the cluster's certificates")
    pki.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", str(pki / "ca.key"), "-out", str(pki / "ca.crt"),
             "-days", "3650", "-subj", "/CN=chatenv-local-ca",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature")

    def leaf(name: str, subject: str, extensions: str) -> None:
        ext = pki / f"{name}.ext"
        ext.write_text(extensions)
        _openssl("req", *ec, "-keyout", str(pki / f"{name}.key"), "-out", str(pki / f"{name}.csr"),
                 "-subj", subject)
        _openssl("x509", "-req", "-in", str(pki / f"{name}.csr"), "-CA", str(pki / "ca.crt"),
                 "-CAkey", str(pki / "ca.key"), "-CAcreateserial", "-days", "3650",
                 "-out", str(pki / f"{name}.crt"), "-extfile", str(ext))

    leaf("apiserver", "/CN=kube-apiserver",
         "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,"
         "DNS:kubernetes.default,DNS:kubernetes.default.svc\n"
         "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    leaf("admin", "/O=system:masters/CN=chatenv-admin",
         "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n")
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
             "-out", str(pki / "sa.key"))
    _openssl("pkey", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub"))
    for key in pki.glob("*.key"):
        key.chmod(0o600)


def write_kubeconfig(path: Path, pki: Path, port: int) -> None:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "chatenv-local", "cluster": {
                    "server": f"https://127.0.0.1:{port}",
                    "certificate-authority": str(pki / "ca.crt")}}],
                "users": [{"name": "chatenv-admin", "user": {
                    "client-certificate": str(pki / "admin.crt"),
                    "client-key": str(pki / "admin.key")}}],
                "contexts": [{"name": "chatenv-local", "context": {
                    "cluster": "chatenv-local", "user": "chatenv-admin"}}],
                "current-context": "chatenv-local",
            },
            indent=2,
        )
    )
    path.chmod(0o600)


# --------------------------------------------------------------------------- processes


def ensure_port_free(port: int, what: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            raise ClusterError(
                f"port {port} for {what} is already taken on 127.0.0.1: {e}") from None


@dataclass
class Proc:
    name: str
    pid: int
    binary: str

    def alive(self) -> bool:
        """True when the PID still runs *our* binary (PIDs get reused)."""
        try:
            exe = os.readlink(f"/proc/{self.pid}/exe")
        except OSError:
            return False
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{self.pid}/stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                return False
        return exe.removesuffix(" (deleted)") == self.binary


class State:
    """The on-disk record of one running cluster: its ports, PIDs and kubeconfig."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.file = directory / "state.json"

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    def load(self) -> dict[str, object] | None:
        try:
            return json.loads(self.file.read_text())  # type: ignore[no-any-return]
        except FileNotFoundError:
            return None

    def procs(self) -> list[Proc]:
        data = self.load() or {}
        return [Proc(**p) for p in data.get("procs", [])]  # type: ignore[union-attr,arg-type]

    def save(self, ports: dict[str, int], procs: list[Proc]) -> None:
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"ports": ports, "procs": [p.__dict__ for p in procs]}, indent=2))
        tmp.rename(self.file)


def start(name: str, argv: list[str], state_dir: Path) -> Proc:
    logfile = open(state_dir / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        argv, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True, cwd=state_dir,
    )
    logfile.close()
    return Proc(name=name, pid=proc.pid, binary=argv[0])


def _tls_context(pki: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return ctx


def wait_http(url: str, what: str, proc: Proc, state_dir: Path, timeout: float = 90,
              context: ssl.SSLContext | None = None) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not proc.alive():
            logtail = (state_dir / "logs" / f"{proc.name}.log").read_text(errors="replace")[-3000:]
            raise ClusterError(f"{what} exited during start-up; the end of its log:\n{logtail}")
        try:
            with urllib.request.urlopen(url, timeout=3, context=context) as resp:  # noqa: S310
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as e:
            last = str(e)
        time.sleep(0.3)
    raise ClusterError(f"{what} did not become healthy at {url} within {timeout:.0f} s ({last})")


def kubectl(binaries: Binaries, kubeconfig: Path, *args: str, stdin: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binaries.path("kubectl")), "--kubeconfig", str(kubeconfig), *args],
        input=stdin, capture_output=True, text=True, check=check,
    )


def bootstrap_objects(nodes: int) -> str:
    """Fake Nodes for kwok and a default StorageClass served by the host-path provisioner."""
    docs: list[dict[str, object]] = [
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": "standard",
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": "kubernetes.io/host-path",
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
        }
    ]
    for i in range(nodes):
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": f"kwok-node-{i}",
                    "annotations": {"kwok.x-k8s.io/node": "fake",
                                    "node.alpha.kubernetes.io/ttl": "0"},
                    "labels": {
                        "kubernetes.io/hostname": f"kwok-node-{i}",
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "type": "kwok",
                    },
                },
                "status": {
                    "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "250"},
                    "capacity": {"cpu": "32", "memory": "256Gi", "pods": "250"},
                },
            }
        )
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": docs})


def up(binaries: Binaries, state: State, allow_build: bool, port: int | None = None) -> None:
    if any(p.alive() for p in state.procs()):
        log(f"already running (state in {state.dir})")
        print(f"export KUBECONFIG={state.kubeconfig}")
        return
    if port:
        ensure_port_free(port, "kube-apiserver")
    missing = binaries.missing()
    if missing and not allow_build:
        raise ClusterError("binaries missing (run `hack/cluster.py build`): "
                           + ", ".join(map(str, missing)))
    if missing:
        build(binaries)

    if state.dir.exists():
        shutil.rmtree(state.dir)
    (state.dir / "logs").mkdir(parents=True)
    state.dir.chmod(0o700)
    pki = state.dir / "pki"
    make_certificates(pki)

    ports = {name: free_port() for name in
             ("etcd", "etcd-peer", "apiserver", "controller-manager", "scheduler", "kwok")}
    if port:
        ports["apiserver"] = port
    for name, port in ports.items():
        ensure_port_free(port, name)
    write_kubeconfig(state.kubeconfig, pki, ports["apiserver"])
    procs: list[Proc] = []

    def launch(name: str, argv: list[str]) -> Proc:
        p = start(name, argv, state.dir)
        procs.append(p)
        state.save(ports, procs)
        return p

    try:
        etcd = launch("etcd", [
            str(binaries.path("etcd")), "--data-dir", str(state.dir / "etcd"),
            "--listen-client-urls", f"http://127.0.0.1:{ports['etcd']}",
            "--advertise-client-urls", f"http://127.0.0.1:{ports['etcd']}",
            "--listen-peer-urls", f"http://127.0.0.1:{ports['etcd-peer']}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{ports['etcd-peer']}",
            "--initial-cluster", f"default=http://127.0.0.1:{ports['etcd-peer']}",
            "--unsafe-no-fsync", "--quota-backend-bytes", str(4 << 30),
            "--log-level", "warn",
        ])
        wait_http(f"http://127.0.0.1:{ports['etcd']}/health", "etcd", etcd, state.dir)

        api = launch("kube-apiserver", [
            str(binaries.path("kube-apiserver")),
            f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allow-privileged=true",
            f"--cert-dir={pki}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--authorization-mode=RBAC",
            f"--secure-port={ports['apiserver']}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            "--endpoint-reconciler-type=none",
            f"--service-account-issuer=https://127.0.0.1:{ports['apiserver']}/",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--enable-priority-and-fairness=false",
            "--v=1",
        ])
        wait_http(f"https://127.0.0.1:{ports['apiserver']}/readyz", "kube-apiserver", api,
                  state.dir, timeout=120, context=_tls_context(pki))

        launch("kube-controller-manager", [
            str(binaries.path("kube-controller-manager")),
            f"--kubeconfig={state.kubeconfig}",
            f"--authentication-kubeconfig={state.kubeconfig}",
            f"--authorization-kubeconfig={state.kubeconfig}",
            "--leader-elect=false",
            "--controllers=*",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
            "--use-service-account-credentials=false",
            "--enable-hostpath-provisioner=true",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports['controller-manager']}",
            f"--cert-dir={state.dir / 'kcm-certs'}",
            "--concurrent-gc-syncs=10",
            "--concurrent-namespace-syncs=5",
            "--v=1",
        ])
        launch("kube-scheduler", [
            str(binaries.path("kube-scheduler")),
            f"--kubeconfig={state.kubeconfig}",
            f"--authentication-kubeconfig={state.kubeconfig}",
            f"--authorization-kubeconfig={state.kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports['scheduler']}",
            f"--cert-dir={state.dir / 'scheduler-certs'}",
            "--v=1",
        ])
        kubectl(binaries, state.kubeconfig, "apply", "--server-side", "-f", "-",
                stdin=bootstrap_objects(FAKE_NODES))
        launch("kwok", [
            str(binaries.path("kwok")),
            f"--kubeconfig={state.kubeconfig}",
            "--manage-all-nodes=true",
            "--node-lease-duration-seconds=40",
            f"--cidr={POD_CIDR}",
            f"--config={binaries.kwok_stages}",
            f"--server-address=127.0.0.1:{ports['kwok']}",
        ])
        wait_cluster_ready(binaries, state)
    except BaseException:
        log("start-up failed; stopping what was started")
        stop(state)
        raise
    log(f"control plane {binaries.versions.kubernetes} ready (state and logs in {state.dir})")
    print(f"export KUBECONFIG={state.kubeconfig}")


def wait_cluster_ready(binaries: Binaries, state: State, timeout: float = 120) -> None:
    """Nodes Ready (kwok), the default ServiceAccount present (controller-manager)."""
    deadline = time.monotonic() + timeout
    waits = [
        ("fake nodes Ready", ["wait", "--for=condition=Ready", "node", "--all", "--timeout=5s"]),
        ("default ServiceAccount", ["get", "serviceaccount", "default", "-n", "default"]),
    ]
    for what, args in waits:
        while True:
            for p in state.procs():
                if not p.alive():
                    raise ClusterError(f"{p.name} exited; see {state.dir}/logs/{p.name}.log")
            res = kubectl(binaries, state.kubeconfig, *args, check=False)
            if res.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise ClusterError(f"timed out waiting for {what}: {res.stderr.strip()}")
            time.sleep(0.5)


def stop(state: State) -> None:
    procs = state.procs()
    running = [p for p in procs if p.alive()]
    # Reverse start order: kwok and controllers first, etcd last.
    for p in reversed(running):
        with contextlib.suppress(ProcessLookupError):
            os.kill(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while any(p.alive() for p in running) and time.monotonic() < deadline:
        time.sleep(0.1)
    for p in running:
        if p.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGKILL)
    if state.file.exists():
        state.save({}, [])
    if running:
        log("stopped " + ", ".join(f"{p.name} ({p.pid})" for p in running))
    else:
        log("nothing running")


def status(binaries: Binaries, state: State) -> int:
    procs = state.procs()
    if not procs:
        print(f"not running (no state in {state.dir})")
        return 1
    healthy = True
    for p in procs:
        alive = p.alive()
        healthy &= alive
        print(f"{p.name:<24} pid {p.pid:<8} {'running' if alive else 'STOPPED'}")
    if healthy:
        res = kubectl(binaries, state.kubeconfig, "get", "--raw", "/readyz", check=False)
        print(f"{'apiserver /readyz':<24} {res.stdout.strip() or res.stderr.strip()}")
        healthy = res.returncode == 0
        print(f"export KUBECONFIG={state.kubeconfig}")
    return 0 if healthy else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command",
                        choices=["build", "up", "down", "env", "status", "versions", "kubectl"])
    parser.add_argument("--state-dir", type=Path,
                        default=Path(os.environ.get("CHATENV_CLUSTER_DIR", DEFAULT_STATE_DIR)),
                        help="where the running cluster keeps its data, logs and kubeconfig")
    parser.add_argument("--no-build", action="store_true",
                        help="`up` fails instead of building missing binaries")
    parser.add_argument("--port", type=int, default=None,
                        help="`up`: the API server's port (default: a free one)")
    args = parser.parse_args(argv)
    binaries = Binaries(Versions.pinned())
    state = State(args.state_dir.resolve())
    try:
        if args.command == "build":
            build(binaries)
        elif args.command == "up":
            up(binaries, state, allow_build=not args.no_build, port=args.port)
        elif args.command == "down":
            stop(state)
        elif args.command == "env":
            if not any(p.alive() for p in state.procs()):
                raise ClusterError(f"no cluster running with state in {state.dir}; run `up`")
            print(f"export KUBECONFIG={state.kubeconfig}")
        elif args.command == "status":
            return status(binaries, state)
        elif args.command == "versions":
            print(json.dumps(binaries.versions.__dict__))
        elif args.command == "kubectl":
            # The kubectl built with the control plane, else the one on PATH.
            built = binaries.path("kubectl")
            print(built if built.exists() else shutil.which("kubectl") or "kubectl")
    except ClusterError as e:
        log(f"error: {e}")
        return 1
    except subprocess.CalledProcessError as e:
        detail = (e.stderr or b"").decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        log(f"error: {' '.join(map(str, e.cmd))} failed ({e.returncode}): {detail.strip()}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
