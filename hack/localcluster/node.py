"""A real node on this machine: containerd + runc + CNI + kubelet + kube-proxy.

The node's address lives on an empty Linux bridge of its own (the kernel here has
no `dummy` links); pods get addresses from the node's podCIDR on a second bridge
made by the CNI bridge plugin. Every path the node writes is under the cluster's
state directory, except containerd's image store, which is a cache keyed by the
containerd version (images survive `down`, so the next `up` starts in seconds).
What the node changes on the host anyway is recorded and undone by `hoststate`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .controlplane import NODE_PORT_RANGE, POD_CIDR, SERVICE_CIDR, kubectl
from .processes import ClusterError, State, free_port, start, wait_path
from .versions import CACHE_ROOT, Binaries

NODE_NAME = "chatenv-node"
NODE_BRIDGE = "chatenv-node"  # holds the node's address
NODE_IP = "10.254.254.1"
CNI_BRIDGE = "chatenv-cni0"  # the pods' bridge
CLUSTER_DNS = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
CNI_BIN_DIR = "/usr/lib/cni"  # Debian's containernetworking-plugins
RUNC = "/usr/sbin/runc"


@dataclass(frozen=True)
class NodePaths:
    """Where one real node keeps its files (all under the state dir but the image store)."""

    root: Path
    containerd_version: str

    @property
    def containerd_root(self) -> Path:
        return CACHE_ROOT / f"containerd-root-{self.containerd_version}"

    @property
    def containerd_state(self) -> Path:
        return self.root / "containerd"

    @property
    def socket(self) -> Path:
        return self.root / "containerd" / "containerd.sock"

    @property
    def kubelet_root(self) -> Path:
        return self.root / "kubelet"

    @property
    def cni_conf_dir(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def cni_ipam_dir(self) -> Path:
        return self.root / "cni" / "ipam"

    @property
    def pod_logs(self) -> Path:
        return self.root / "pod-logs"

    def all_dirs(self) -> list[Path]:
        """What a teardown unmounts under and removes (the image store is kept)."""
        return [self.root]


def node_paths(state: State, b: Binaries) -> NodePaths:
    return NodePaths(state.dir / "node", b.versions.containerd)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def link_exists(name: str) -> bool:
    return _ip("link", "show", name, check=False).returncode == 0


def setup_node_address() -> None:
    """The node's IP on an empty bridge (no `dummy` link type in this kernel)."""
    if not link_exists(NODE_BRIDGE):
        _ip("link", "add", NODE_BRIDGE, "type", "bridge")
    addrs = _ip("-o", "addr", "show", "dev", NODE_BRIDGE).stdout
    if f" {NODE_IP}/" not in addrs:
        _ip("addr", "add", f"{NODE_IP}/32", "dev", NODE_BRIDGE)
    _ip("link", "set", NODE_BRIDGE, "up")


# ------------------------------------------------------------------------- containerd


def containerd_config(paths: NodePaths, sandbox_image: str) -> str:
    """containerd 2.x: CRI with runc, our CNI dirs, the local pause image, no host paths."""
    state = paths.containerd_state
    return f"""\
version = 3
root = '{paths.containerd_root}'
state = '{state}'
imports = []

[grpc]
  address = '{paths.socket}'

[ttrpc]
  address = '{paths.socket}.ttrpc'

[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = '{sandbox_image}'

  [plugins.'io.containerd.cri.v1.runtime']
    # The machine's capability bounding set lacks CAP_SYS_RESOURCE: runc could not set
    # the negative oom_score_adj kubelet asks for the pause container.
    restrict_oom_score_adj = true
    disable_apparmor = true
    enable_cdi = false
    netns_mounts_under_state_dir = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = '{RUNC}'
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['{CNI_BIN_DIR}']
      conf_dir = '{paths.cni_conf_dir}'

  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = '127.0.0.1'
    stream_server_port = '0'

  [plugins.'io.containerd.internal.v1.opt']
    path = '{state}/opt'

  [plugins.'io.containerd.image-verifier.v1.bindir']
    bin_dir = '{state}/image-verifier'

  [plugins.'io.containerd.nri.v1.nri']
    disable = true
"""


def start_containerd(b: Binaries, state: State, paths: NodePaths, sandbox_image: str) -> None:
    for tool in (RUNC, f"{CNI_BIN_DIR}/bridge", f"{CNI_BIN_DIR}/portmap"):
        if not Path(tool).exists():
            raise ClusterError(f"{tool} is missing: install the Debian packages runc and "
                               "containernetworking-plugins (hack/setup does)")
    for d in (paths.containerd_state, paths.containerd_root, paths.cni_conf_dir):
        d.mkdir(parents=True, exist_ok=True)
    config = paths.root / "containerd.toml"
    config.write_text(containerd_config(paths, sandbox_image))
    # containerd finds its shim on PATH.
    env = dict(os.environ, PATH=f"{b.dir('containerd')}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    proc = start("containerd", [str(b.path("containerd")), "--config", str(config)], state,
                 env=env)
    wait_path(paths.socket, "containerd", proc, state)


def ctr(b: Binaries, paths: NodePaths, *args: str, stdin: int | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(b.path("ctr")), "--address", str(paths.socket), "-n", "k8s.io",
                           *args], stdin=stdin, capture_output=True, text=True, check=check)


# ------------------------------------------------------------------------- kubelet


def kubelet_config(state: State, paths: NodePaths) -> dict[str, object]:
    pki = state.dir / "pki"
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_IP,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": free_port(),
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": str(pki / "ca.crt")}},
        "authorization": {"mode": "Webhook"},
        # The machine's facts: a cgroup v1 hierarchy, no systemd, swap allowed.
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{paths.socket}",
        "clusterDNS": [CLUSTER_DNS],
        "clusterDomain": CLUSTER_DOMAIN,
        "resolvConf": "/etc/resolv.conf",
        "podLogsDir": str(paths.pod_logs),
        "volumePluginDir": str(paths.root / "volume-plugins"),
        "staticPodPath": "",
        # Images are built here and cannot be pulled again: never garbage-collect them.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                         "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
        "serializeImagePulls": False,
        "maxPods": 110,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
    }


def start_kubelet(b: Binaries, state: State, paths: NodePaths) -> None:
    paths.kubelet_root.mkdir(parents=True, exist_ok=True)
    config = paths.root / "kubelet.json"
    config.write_text(json.dumps(kubelet_config(state, paths), indent=2))
    kubeconfig = paths.root / "kubelet.kubeconfig"
    _kubeconfig_for(state, kubeconfig, "kubelet")
    start("kubelet", [
        str(b.path("kubelet")),
        f"--config={config}",
        f"--kubeconfig={kubeconfig}",
        f"--root-dir={paths.kubelet_root}",
        f"--cert-dir={paths.root / 'kubelet-pki'}",
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={NODE_IP}",
        "--v=1",
    ], state)


def _kubeconfig_for(state: State, path: Path, user: str) -> None:
    from .certificates import write_kubeconfig

    server = json.loads(state.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    write_kubeconfig(path, state.dir / "pki", server, user=user)


def wait_pod_cidr(b: Binaries, state: State, timeout: float = 120) -> str:
    """The podCIDR kube-controller-manager gives the node once the kubelet registered it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in state.procs():
            if not p.alive():
                raise ClusterError(f"{p.name} exited; see {state.logs}/{p.name}.log")
        res = kubectl(b, state.kubeconfig, "get", "node", NODE_NAME, "-o",
                      "jsonpath={.spec.podCIDR}", check=False)
        if res.returncode == 0 and res.stdout.strip():
            return res.stdout.strip()
        time.sleep(0.3)
    raise ClusterError(f"node {NODE_NAME} did not register with a podCIDR within {timeout:.0f} s; "
                       f"see {state.logs}/kubelet.log")


def cni_conflist(paths: NodePaths, pod_cidr: str) -> dict[str, object]:
    return {
        "cniVersion": "1.0.0",
        "name": "chatenv",
        "plugins": [
            {"type": "bridge", "bridge": CNI_BRIDGE, "isGateway": True, "ipMasq": False,
             "hairpinMode": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": pod_cidr}]],
                      "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(paths.cni_ipam_dir)}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def write_cni_config(paths: NodePaths, pod_cidr: str) -> None:
    paths.cni_conf_dir.mkdir(parents=True, exist_ok=True)
    tmp = paths.cni_conf_dir / ".10-chatenv.conflist"
    tmp.write_text(json.dumps(cni_conflist(paths, pod_cidr), indent=2))
    tmp.rename(paths.cni_conf_dir / "10-chatenv.conflist")


# ------------------------------------------------------------------------- kube-proxy


def kube_proxy_config(paths: NodePaths) -> dict[str, object]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(paths.root / "kube-proxy.kubeconfig")},
        "mode": "iptables",
        "clusterCIDR": POD_CIDR,
        "hostnameOverride": NODE_NAME,
        "bindAddress": NODE_IP,
        "healthzBindAddress": f"127.0.0.1:{free_port()}",
        "metricsBindAddress": f"127.0.0.1:{free_port()}",
        # NodePorts answer on the node's address and loopback only, never on the LAN.
        "nodePortAddresses": [f"{NODE_IP}/32", "127.0.0.1/32"],
        # Leave the host's conntrack settings alone.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s",
                      "tcpCloseWaitTimeout": "0s"},
    }


def start_kube_proxy(b: Binaries, state: State, paths: NodePaths) -> None:
    _kubeconfig_for(state, paths.root / "kube-proxy.kubeconfig", "kube-proxy")
    config = paths.root / "kube-proxy.json"
    config.write_text(json.dumps(kube_proxy_config(paths), indent=2))
    start("kube-proxy", [str(b.path("kube-proxy")), f"--config={config}", "--v=1"], state)


# --------------------------------------------------------------------- NetworkPolicy


def start_network_policies(b: Binaries, state: State, paths: NodePaths) -> None:
    """kube-router's network policy controller alone (no routing, no service proxy): it
    enforces NetworkPolicies with iptables chains and ipsets."""
    kubeconfig = paths.root / "kube-router.kubeconfig"
    _kubeconfig_for(state, kubeconfig, "kube-router")
    start("kube-router", [
        str(b.path("kube-router")),
        f"--kubeconfig={kubeconfig}",
        "--run-firewall=true", "--run-router=false", "--run-service-proxy=false",
        "--run-loadbalancer=false", "--enable-cni=false", "--enable-ipv6=false",
        f"--hostname-override={NODE_NAME}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--service-node-port-range={NODE_PORT_RANGE}",
        "--health-port=0", "--metrics-port=0",
        "--v=1",
    ], state)


def tools_missing() -> list[str]:
    """Host programs the node needs (Debian packages installed by hack/setup)."""
    wanted = ["ip", "iptables", "ip6tables", "iptables-save", "iptables-restore", "conntrack",
              "ipset", "mount", "umount", "nsenter"]
    return [t for t in wanted if not shutil.which(t)]
