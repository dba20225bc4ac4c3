"""etcd, kube-apiserver, kube-controller-manager and kube-scheduler as local processes."""

from __future__ import annotations

import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .processes import ClusterError, State, free_port, start, wait_http
from .versions import Binaries

SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
# A narrow NodePort range that nothing else on a developer's machine uses.
NODE_PORT_RANGE = "30700-30799"


@dataclass(frozen=True)
class ControlPlane:
    """Where the API server listens, and whether a real node will join."""

    address: str
    port: int
    real_node: bool

    @property
    def server(self) -> str:
        return f"https://{self.address}:{self.port}"


def _tls_context(pki: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return ctx


def kubectl(b: Binaries, kubeconfig: Path, *args: str, stdin: str | None = None,
            check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(b.path("kubectl")), "--kubeconfig", str(kubeconfig), *args],
                          input=stdin, capture_output=True, text=True, check=check,
                          timeout=timeout)


def start_control_plane(b: Binaries, state: State, cp: ControlPlane) -> None:
    pki = state.dir / "pki"
    ports = {name: free_port() for name in
             ("etcd", "etcd-peer", "controller-manager", "scheduler")}
    state.update(ports={**ports, "apiserver": cp.port})

    etcd = start("etcd", [
        str(b.path("etcd")), "--data-dir", str(state.dir / "etcd"),
        "--listen-client-urls", f"http://127.0.0.1:{ports['etcd']}",
        "--advertise-client-urls", f"http://127.0.0.1:{ports['etcd']}",
        "--listen-peer-urls", f"http://127.0.0.1:{ports['etcd-peer']}",
        "--initial-advertise-peer-urls", f"http://127.0.0.1:{ports['etcd-peer']}",
        "--initial-cluster", f"default=http://127.0.0.1:{ports['etcd-peer']}",
        "--unsafe-no-fsync", "--quota-backend-bytes", str(4 << 30),
        "--log-level", "warn",
    ], state)
    wait_http(f"http://127.0.0.1:{ports['etcd']}/health", "etcd", etcd, state)

    api_args = [
        str(b.path("kube-apiserver")),
        f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--allow-privileged=true",
        f"--cert-dir={pki}",
        f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        f"--secure-port={cp.port}",
        f"--bind-address={cp.address}",
        f"--advertise-address={cp.address}",
        f"--service-account-issuer=https://{cp.address}:{cp.port}/",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        "--enable-priority-and-fairness=false",
        "--v=1",
    ]
    if cp.real_node:
        api_args += [
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
            "--kubelet-preferred-address-types=InternalIP",
            f"--service-node-port-range={NODE_PORT_RANGE}",
        ]
    else:
        # Nothing in the cluster reaches the API server through its Service on fake nodes.
        api_args += ["--authorization-mode=RBAC", "--endpoint-reconciler-type=none"]
    api = start("kube-apiserver", api_args, state)
    wait_http(f"{cp.server}/readyz", "kube-apiserver", api, state, timeout=120,
              context=_tls_context(pki))

    kcm_args = [
        str(b.path("kube-controller-manager")),
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
        "--bind-address=127.0.0.1",
        f"--secure-port={ports['controller-manager']}",
        f"--cert-dir={state.dir / 'kcm-certs'}",
        "--concurrent-gc-syncs=10",
        "--concurrent-namespace-syncs=5",
        "--v=1",
    ]
    if cp.real_node:
        kcm_args += ["--allocate-node-cidrs=true", f"--cluster-cidr={POD_CIDR}",
                     "--node-cidr-mask-size=24", f"--service-cluster-ip-range={SERVICE_CIDR}"]
    else:
        # Fake nodes mount nothing: the built-in development provisioner binds claims.
        kcm_args.append("--enable-hostpath-provisioner=true")
    start("kube-controller-manager", kcm_args, state)
    start("kube-scheduler", [
        str(b.path("kube-scheduler")),
        f"--kubeconfig={state.kubeconfig}",
        f"--authentication-kubeconfig={state.kubeconfig}",
        f"--authorization-kubeconfig={state.kubeconfig}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports['scheduler']}",
        f"--cert-dir={state.dir / 'scheduler-certs'}",
        "--v=1",
    ], state)


def wait_for(b: Binaries, state: State, what: str, args: list[str], timeout: float = 120) -> None:
    """Retry a kubectl command until it succeeds, failing early when a process died."""
    deadline = time.monotonic() + timeout
    while True:
        for p in state.procs():
            if not p.alive():
                raise ClusterError(f"{p.name} exited; see {state.logs}/{p.name}.log")
        res = kubectl(b, state.kubeconfig, *args, check=False)
        if res.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out waiting for {what}: {res.stderr.strip()}")
        time.sleep(0.5)
