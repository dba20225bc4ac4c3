"""What the local cluster is made of: pinned versions and where each build is cached."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

HACK = Path(__file__).resolve().parent.parent
ROOT = HACK.parent
CACHE_ROOT = Path(os.environ.get("CHATENV_CACHE", Path.home() / ".cache" / "chatenv"))

# Modules built with `go install module@version` (no replace directives of their own).
KWOK_VERSION = "v0.7.0"
CONTAINERD_VERSION = "v2.2.9"
COREDNS_VERSION = "v1.14.7"
LOCAL_PATH_PROVISIONER_VERSION = "v0.0.30"

K8S_CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
K8S_NODE = ("kubelet", "kube-proxy")
K8S_TOOLS = (*K8S_CONTROL_PLANE, *K8S_NODE)


def required_version(go_mod: Path, module: str) -> str:
    """The version a wrapper module's go.mod requires of ``module``."""
    text = go_mod.read_text()
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", text, re.M)
    if not match:
        raise LookupError(f"{go_mod} does not require {module}")
    return match.group(1)


@dataclass(frozen=True)
class Versions:
    kubernetes: str
    etcd: str
    kwok: str
    containerd: str
    coredns: str
    traefik: str
    jaeger: str
    local_path_provisioner: str
    kube_router: str

    @classmethod
    def pinned(cls) -> Versions:
        return cls(
            kubernetes=required_version(HACK / "k8s" / "go.mod", "k8s.io/kubernetes"),
            etcd=required_version(HACK / "etcd" / "go.mod", "go.etcd.io/etcd/server/v3"),
            kwok=KWOK_VERSION,
            containerd=CONTAINERD_VERSION,
            coredns=COREDNS_VERSION,
            traefik=required_version(HACK / "traefik" / "go.mod", "github.com/traefik/traefik/v3"),
            jaeger=required_version(HACK / "jaeger" / "go.mod",
                                    "github.com/jaegertracing/jaeger"),
            local_path_provisioner=LOCAL_PATH_PROVISIONER_VERSION,
            kube_router=required_version(HACK / "kube-router" / "go.mod",
                                         "github.com/cloudnativelabs/kube-router/v2"),
        )


@dataclass(frozen=True)
class Binaries:
    """Where each cached binary lives; every directory is keyed by its version."""

    versions: Versions

    def dir(self, component: str) -> Path:
        version = {
            "k8s": self.versions.kubernetes,
            "etcd": self.versions.etcd,
            "kwok": self.versions.kwok,
            "containerd": self.versions.containerd,
            "coredns": self.versions.coredns,
            "traefik": self.versions.traefik,
            "jaeger": self.versions.jaeger,
            "local-path-provisioner": self.versions.local_path_provisioner,
            "kube-router": self.versions.kube_router,
        }[component]
        return CACHE_ROOT / f"{component}-{version}"

    def path(self, name: str) -> Path:
        if name in K8S_TOOLS:
            return self.dir("k8s") / name
        if name in ("containerd", "containerd-shim-runc-v2", "ctr"):
            return self.dir("containerd") / name
        if name in ("etcd", "kwok", "coredns", "traefik", "jaeger", "local-path-provisioner",
                    "kube-router"):
            return self.dir(name) / name
        raise KeyError(name)

    @property
    def kwok_stages(self) -> Path:
        return self.dir("kwok") / "stages.yaml"

    def wanted(self, *, real_node: bool) -> list[Path]:
        names = [*K8S_CONTROL_PLANE, "etcd"]
        if real_node:
            names += [*K8S_NODE, "containerd", "containerd-shim-runc-v2", "ctr", "coredns",
                      "traefik", "jaeger", "local-path-provisioner", "kube-router"]
        else:
            names.append("kwok")
        paths = [self.path(n) for n in names]
        return paths if real_node else [*paths, self.kwok_stages]

    def missing(self, *, real_node: bool) -> list[Path]:
        return [p for p in self.wanted(real_node=real_node) if not p.exists()]
