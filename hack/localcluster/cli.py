"""hack/cluster.py: build, start, inspect and stop the local cluster."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import images, lifecycle, node
from .building import build
from .controlplane import kubectl
from .processes import ClusterError, State, log
from .versions import Binaries, Versions

DEFAULT_STATE_DIR = Path(tempfile.gettempdir()) / "chatenv-cluster"

USAGE = """\
  hack/cluster.py build [--fake-nodes]    build or reuse the cached binaries
  hack/cluster.py up [--fake-nodes]       start; `env` prints the KUBECONFIG export
  hack/cluster.py images NAME...          build and load images into the real node
  hack/cluster.py install                 chatenv's images, deploy/ (local overlay), operator
  hack/cluster.py overlay --image operator=REF --image chat=REF [--ingress-class C
      --ingress-namespace NS --ingress-port P] --out DIR
                                          the same overlay for a cluster of your own (kind)
  hack/cluster.py env                     print `export KUBECONFIG=...`
  hack/cluster.py info                    JSON: mode, kubeconfig, ingress port, images
  hack/cluster.py status                  which processes run, is the API ready
  hack/cluster.py down                    stop what `up` started; restore the host
"""


def build_everything(b: Binaries) -> None:
    """Every binary and every image, so that no test has to build one. The images that need
    no binary of ours (mostly downloads: debootstrap, apt, pip, npm) build while Go
    compiles; those made of a binary follow."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        binaries = pool.submit(build, b, real_node=True, fake_nodes=True)
        early = pool.submit(images.ensure_images, b, list(images.SOURCE_IMAGES), present=set(),
                            importer=None)
        binaries.result()
        early.result()
    images.ensure_images(b, [*images.CLUSTER_IMAGES, *images.PROJECT_IMAGES], present=set(),
                         importer=None)


def info(b: Binaries, state: State) -> dict[str, object]:
    """Where things are, for scripts and the e2e tests (which look inside the real node)."""
    record = state.load()
    facts: dict[str, object] = {
        "running": state.running(), "mode": record.get("mode"),
        "kubeconfig": str(state.kubeconfig), "logs": str(state.logs),
        "ingressPort": record.get("ingress_port")}
    if record.get("mode") == "real":
        paths = node.node_paths(state, b)
        facts.update(ctr=[str(b.path("ctr")), "--address", str(paths.socket), "-n", "k8s.io"],
                     kubeletRoot=str(paths.kubelet_root), cniBridge=node.CNI_BRIDGE,
                     nodeIP=node.NODE_IP)
    return facts


def status(b: Binaries, state: State) -> int:
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
        res = kubectl(b, state.kubeconfig, "get", "--raw", "/readyz", check=False)
        print(f"{'apiserver /readyz':<24} {res.stdout.strip() or res.stderr.strip()}")
        healthy = res.returncode == 0
        print(f"export KUBECONFIG={state.kubeconfig}")
    return 0 if healthy else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="The local Kubernetes cluster: a real node (default) or kwok's fake nodes.",
        usage=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["build", "up", "down", "env", "info", "status",
                                            "versions", "kubectl", "images", "install",
                                            "overlay"])
    parser.add_argument("names", nargs="*", help="`images`: which images (default: chatenv's)")
    parser.add_argument("--state-dir", type=Path,
                        default=Path(os.environ.get("CHATENV_CLUSTER_DIR", DEFAULT_STATE_DIR)),
                        help="where the running cluster keeps its data, logs and kubeconfig")
    parser.add_argument("--fake-nodes", action="store_true",
                        help="kwok's fake nodes instead of a real node (no containers run)")
    parser.add_argument("--no-build", action="store_true",
                        help="`up` fails instead of building missing binaries")
    parser.add_argument("--port", type=int, default=None,
                        help="`up`: the API server's port (default: a free one)")
    parser.add_argument("--ingress-port", type=int,
                        default=int(os.environ.get("CHATENV_INGRESS_PORT",
                                                   lifecycle.DEFAULT_INGRESS_PORT)),
                        help="`up`: the loopback port the ingress controller serves on")
    overlay = parser.add_argument_group("overlay (a local overlay of deploy/ for another cluster)")
    overlay.add_argument("--out", type=Path, default=Path("deploy-local"))
    overlay.add_argument("--image", action="append", default=[], metavar="NAME=REF",
                         help="chat, operator, postgres, redis or jaeger image (repeatable)")
    overlay.add_argument("--ingress-class", default="nginx")
    overlay.add_argument("--ingress-namespace", default="ingress-nginx")
    args = parser.parse_args(argv)
    b = Binaries(Versions.pinned())
    state = State(args.state_dir.resolve())
    try:
        if args.command == "build":
            if args.fake_nodes:
                build(b, real_node=False, fake_nodes=True)
            else:
                build_everything(b)
        elif args.command == "up":
            lifecycle.up(b, state, real_node=not args.fake_nodes, allow_build=not args.no_build,
                         port=args.port, ingress_port=args.ingress_port)
            print(f"export KUBECONFIG={state.kubeconfig}")
        elif args.command == "down":
            lifecycle.down(b, state)
        elif args.command == "env":
            if not state.running():
                raise ClusterError(f"no cluster running with state in {state.dir}; run `up`")
            print(f"export KUBECONFIG={state.kubeconfig}")
        elif args.command == "info":
            print(json.dumps(info(b, state)))
        elif args.command == "images":
            refs = lifecycle.load_images(b, state, args.names or list(images.PROJECT_IMAGES))
            print(json.dumps(refs))
        elif args.command == "install":
            from .install import install  # needs PyYAML: the project's virtualenv

            print(json.dumps(install(b, state)))
        elif args.command == "overlay":
            from .install import Ingress, overlay_command

            print(overlay_command(args.out, args.image, Ingress(
                args.ingress_class, args.ingress_namespace, args.ingress_port)))
        elif args.command == "status":
            return status(b, state)
        elif args.command == "versions":
            print(json.dumps(b.versions.__dict__))
        elif args.command == "kubectl":
            # The kubectl built with the control plane, else the one on PATH.
            built = b.path("kubectl")
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
