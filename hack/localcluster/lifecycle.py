"""`up` and `down` of the local cluster, in either mode."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from . import addons, hoststate, images, node
from .building import build
from .certificates import make_certificates, write_kubeconfig
from .controlplane import ControlPlane, kubectl, start_control_plane, wait_for
from .fakenodes import start_fake_nodes
from .processes import ClusterError, Proc, State, ensure_port_free, free_port, log, stop
from .versions import CACHE_ROOT, Binaries

DEFAULT_INGRESS_PORT = 8480
ACTIVE_NODE = CACHE_ROOT / "node" / "active"  # the state dir of the one real node running


def _marked_node() -> Path | None:
    """The state dir of the last real node started here and not stopped by `down`."""
    try:
        return Path(ACTIVE_NODE.read_text().strip())
    except FileNotFoundError:
        return None


def active_real_node() -> Path | None:
    """The state dir of a real node running on this machine, if any (one at a time)."""
    directory = _marked_node()
    return directory if directory and State(directory).running() else None


def up(b: Binaries, state: State, *, real_node: bool, allow_build: bool,
       port: int | None = None, ingress_port: int = DEFAULT_INGRESS_PORT) -> None:
    if state.running():
        log(f"already running (state in {state.dir})")
        return
    if real_node:
        _check_real_node_possible(b, state, ingress_port)
    elif port:
        ensure_port_free(port, "kube-apiserver")
    missing = b.missing(real_node=real_node)
    if missing and not allow_build:
        raise ClusterError("binaries missing (run `hack/cluster.py build`): "
                           + ", ".join(map(str, missing)))
    if missing:
        build(b, real_node=real_node, fake_nodes=not real_node)

    if state.dir.exists():
        _remove_tree(state.dir)
    state.logs.mkdir(parents=True)
    state.dir.chmod(0o700)
    address = node.NODE_IP if real_node else "127.0.0.1"
    started = time.monotonic()
    try:
        if real_node:
            # Before the first change to the host: what `down` restores.
            state.update(mode="real", host=hoststate.record(), ingress_port=ingress_port)
            ACTIVE_NODE.parent.mkdir(parents=True, exist_ok=True)
            ACTIVE_NODE.write_text(str(state.dir))
            node.setup_node_address()
        else:
            state.update(mode="fake")
        api_port = port or free_port(address)
        ensure_port_free(api_port, "kube-apiserver", address)
        pki = state.dir / "pki"
        make_certificates(pki, address=address, node=node.NODE_NAME if real_node else None)
        cp = ControlPlane(address=address, port=api_port, real_node=real_node)
        write_kubeconfig(state.kubeconfig, pki, cp.server)
        start_control_plane(b, state, cp)
        if real_node:
            _start_real_node(b, state, ingress_port)
        else:
            start_fake_nodes(b, state)
            wait_for(b, state, "fake nodes Ready",
                     ["wait", "--for=condition=Ready", "node", "--all", "--timeout=5s"])
        wait_for(b, state, "the default ServiceAccount",
                 ["get", "serviceaccount", "default", "-n", "default"])
    except BaseException:
        log("start-up failed; stopping what was started")
        down(b, state)
        raise
    mode = "a real node" if real_node else "fake nodes"
    log(f"Kubernetes {b.versions.kubernetes} with {mode} ready in "
        f"{time.monotonic() - started:.0f} s (state and logs in {state.dir})")


def _check_real_node_possible(b: Binaries, state: State, ingress_port: int) -> None:
    if os.geteuid() != 0:
        raise ClusterError("a real node needs root (containerd, kubelet, iptables); "
                           "use --fake-nodes without it")
    _recover_dead_node(b, state)
    other = active_real_node()
    if other and other != state.dir:
        raise ClusterError(f"a real node already runs with state in {other}: only one can run "
                           "on a machine (stop it with `hack/cluster.py down --state-dir "
                           f"{other}`)")
    missing = node.tools_missing()
    if missing:
        raise ClusterError(f"missing host tools: {', '.join(missing)} (hack/setup installs them)")
    if node.link_exists(node.NODE_BRIDGE) or node.link_exists(node.CNI_BRIDGE):
        raise ClusterError(f"network links {node.NODE_BRIDGE}/{node.CNI_BRIDGE} exist from an "
                           "earlier node that was not stopped: run `hack/cluster.py down`")
    ensure_port_free(ingress_port, "the ingress controller")


def _recover_dead_node(b: Binaries, state: State) -> None:
    """A node whose processes died without `down` (killed, machine session ended) left its
    links, chains and mounts: restore the host from its own record before starting anew."""
    directory = _marked_node() or state.dir
    dead = State(directory)
    if dead.running() or dead.load().get("mode") != "real":
        return
    log(f"a real node with state in {directory} stopped without `hack/cluster.py down`: "
        "restoring the host it changed first")
    down(b, dead)


def _start_real_node(b: Binaries, state: State, ingress_port: int) -> None:
    paths = node.node_paths(state, b)
    # containerd first (it is told the pause image's name), then what it lacks of the
    # cluster's images, then the kubelet.
    node.start_containerd(b, state, paths, f"docker.io/{images.Catalog(b).ref('pause')}")
    refs = images.ensure_images(b, list(images.CLUSTER_IMAGES), present=_present(b, paths),
                                importer=lambda fd: _import(b, paths, fd))
    node.start_kubelet(b, state, paths)
    pod_cidr = node.wait_pod_cidr(b, state)
    node.write_cni_config(paths, pod_cidr)
    node.start_kube_proxy(b, state, paths)
    node.start_network_policies(b, state, paths)
    volumes = paths.root / "volumes"
    volumes.mkdir(parents=True, exist_ok=True)
    kubectl(b, state.kubeconfig, "apply", "--server-side", "-f", "-",
            stdin=json.dumps(addons.all_addons(refs, ingress_port, volumes)))
    wait_for(b, state, "the node Ready",
             ["wait", "--for=condition=Ready", f"node/{node.NODE_NAME}", "--timeout=5s"])
    for ns, name in (("kube-system", "coredns"), (addons.INGRESS_NAMESPACE, "traefik"),
                     (addons.STORAGE_NAMESPACE, "local-path-provisioner")):
        wait_for(b, state, f"{name} available",
                 ["wait", "--for=condition=Available", f"deployment/{name}", "-n", ns,
                  "--timeout=5s"], timeout=180)


def _present(b: Binaries, paths: node.NodePaths) -> set[str]:
    """The images the node's containerd has, as `local/...` references."""
    listed = node.ctr(b, paths, "images", "ls", "-q").stdout.split()
    return {ref.removeprefix("docker.io/") for ref in listed}


def _import(b: Binaries, paths: node.NodePaths, fd: int) -> None:
    res = subprocess.run([str(b.path("ctr")), "--address", str(paths.socket), "-n", "k8s.io",
                          "images", "import", "-"], stdin=fd,
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise ClusterError(f"importing images into containerd failed: {res.stderr.strip()}")


def load_images(b: Binaries, state: State, names: list[str]) -> dict[str, str]:
    """Build (when their inputs changed) and load ``names`` into the running real node."""
    if state.load().get("mode") != "real" or not state.running():
        raise ClusterError(f"no real node runs with state in {state.dir}")
    paths = node.node_paths(state, b)
    return images.ensure_images(b, names, present=_present(b, paths),
                                importer=lambda fd: _import(b, paths, fd))


# ----------------------------------------------------------------------------- down


def down(b: Binaries, state: State) -> None:
    record = state.load()
    procs = state.procs()
    if record.get("mode") == "real":
        _drain_node(b, state, procs)
    stopped = stop(procs)
    if record.get("mode") == "real":
        paths = node.node_paths(state, b)
        _kill_leftover_shims(b)
        hoststate.restore(record.get("host", {}), dirs=[paths.root],
                          links=[node.CNI_BRIDGE, node.NODE_BRIDGE], bridge=node.CNI_BRIDGE)
        if active_real_node() in (None, state.dir):
            ACTIVE_NODE.unlink(missing_ok=True)
    if state.file.exists():
        state.update(procs=[], mode=None)
    if stopped:
        log("stopped " + ", ".join(f"{p.name} ({p.pid})" for p in stopped))
    else:
        log("nothing running")


def _by_name(procs: list[Proc]) -> dict[str, Proc]:
    return {p.name: p for p in procs}


def _drain_node(b: Binaries, state: State, procs: list[Proc]) -> None:
    """Remove every pod through the kubelet first, so CNI DEL and unmounts run."""
    named = _by_name(procs)
    if not (named.get("kube-apiserver") and named["kube-apiserver"].alive()
            and named.get("kubelet") and named["kubelet"].alive()):
        return
    # No controller may recreate what is deleted, and nothing new may be scheduled.
    stop([p for p in procs if p.name in ("kube-controller-manager", "kube-scheduler")])
    res = kubectl(b, state.kubeconfig, "delete", "pods", "--all", "--all-namespaces",
                  "--grace-period=1", "--wait=false", check=False)
    if res.returncode != 0:
        log(f"could not delete the pods: {res.stderr.strip()}")
    paths = node.node_paths(state, b)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        tasks = node.ctr(b, paths, "tasks", "ls", "-q", check=False).stdout.split()
        pods = kubectl(b, state.kubeconfig, "get", "pods", "-A", "-o", "name", check=False)
        if not tasks and not pods.stdout.strip():
            break
        time.sleep(0.5)
    # What the kubelet did not get to: kill the tasks, remove the containers.
    for task in node.ctr(b, paths, "tasks", "ls", "-q", check=False).stdout.split():
        node.ctr(b, paths, "tasks", "kill", "-s", "SIGKILL", task, check=False)
        node.ctr(b, paths, "tasks", "delete", "-f", task, check=False)
    containers = node.ctr(b, paths, "containers", "ls", "-q", check=False).stdout.split()
    if containers:
        node.ctr(b, paths, "containers", "rm", *containers, check=False)


def _kill_leftover_shims(b: Binaries) -> None:
    """containerd's shims outlive containerd; any still running belong to this node."""
    shim = os.path.realpath(b.path("containerd-shim-runc-v2"))
    leftovers = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)") == shim:
                leftovers.append(Proc(name="containerd-shim", pid=int(pid), binary=shim))
        except OSError:
            continue
    stop(leftovers, grace=5)


def _remove_tree(path: Path) -> None:
    hoststate.unmount_under([path])
    shutil.rmtree(path, ignore_errors=True)
