"""What a real node changes on the host, recorded before `up` and undone by `down`.

kubelet, kube-proxy, kube-router, the CNI plugins and containerd change host state that
outlives their processes: iptables chains (v4 and v6), ipsets, mounts, network links,
sysctls, cgroups and a few hard-coded directories. `record` notes the values and
paths before the node starts; `restore` undoes each change in the order that
works (processes already stopped by PID): chains, ipsets, mounts, links, sysctls,
cgroups, directories. `snapshot` is what a test compares before `up` and after
`down`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from .processes import log

# sysctls the node's parts set (kubelet with protectKernelDefaults off, kube-proxy for
# loopback NodePorts, the bridge plugin for routing).
SYSCTLS = (
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "net.ipv4.conf.all.route_localnet",
    "net.ipv4.ip_forward",
    "net.ipv6.conf.all.forwarding",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
)

# Paths the node's parts create whatever their configuration says.
HARD_CODED_PATHS = (
    "/var/lib/kubelet",  # device-plugins/ and friends
    "/var/log/containers",  # kubelet's symlinks to container logs
    "/var/log/pods",
    "/var/lib/cni",
    "/run/containerd",
    "/run/nri",
    "/opt/containerd",
    "/run/netns",
    "/etc/cni",
    "/opt/cni",
    "/run/kubernetes",
    "/usr/libexec/kubernetes",
    "/etc/kubernetes",
    "/var/lib/dockershim",
    "/etc/cdi",
    "/var/run/cdi",
)

# dockerd (which builds the images) writes these whatever its flags say.
DOCKER_PATHS = ("/run/docker", "/etc/docker", "/var/lib/docker")

CHAIN_PREFIXES = ("KUBE-", "CNI-")
TABLES = ("filter", "nat", "mangle", "raw")


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def read_sysctls() -> dict[str, str]:
    values = {}
    for name in SYSCTLS:
        with contextlib.suppress(OSError):
            values[name] = _sysctl_path(name).read_text().strip()
    return values


def record() -> dict[str, Any]:
    """What `restore` needs: sysctl values, which paths existed, the chains that existed."""
    return {
        "sysctls": read_sysctls(),
        "paths": existing(),
        "chains": {cmd: sorted(_chains(cmd)) for cmd in ("iptables", "ip6tables")
                   if shutil.which(f"{cmd}-save")},
        "ipsets": sorted(ipsets()),
    }


def ipsets() -> set[str]:
    """The ipsets on the host (kube-router keeps its NetworkPolicy peers in them)."""
    if not shutil.which("ipset"):
        return set()
    res = subprocess.run(["ipset", "list", "-n"], capture_output=True, text=True)
    return set(res.stdout.split()) if res.returncode == 0 else set()


def remove_ipsets(existed: list[str]) -> None:
    """Destroy the ipsets that were not there before (their rules are gone by now)."""
    for name in sorted(ipsets() - set(existed)):
        subprocess.run(["ipset", "destroy", name], capture_output=True)


# ----------------------------------------------------------------------------- iptables


def _save(cmd: str, table: str) -> str:
    res = subprocess.run([f"{cmd}-save", "-t", table], capture_output=True, text=True,
                         check=False)
    return res.stdout if res.returncode == 0 else ""


def _chains(cmd: str) -> set[str]:
    found = set()
    for table in TABLES:
        for line in _save(cmd, table).splitlines():
            if line.startswith(":"):
                found.add(f"{table}/{line[1:].split()[0]}")
    return found


def _target(rule: str) -> str | None:
    m = re.search(r"\s-[jg]\s+(\S+)", rule)
    return m.group(1) if m else None


def without_chains(dump: str, ours: set[str]) -> str:
    """An iptables-save dump of one table with the chains ``ours`` and every rule that
    belongs to or jumps to one of them taken out."""
    kept = []
    for line in dump.splitlines():
        if line.startswith(":") and line[1:].split()[0] in ours:
            continue
        if line.startswith("-A "):
            chain = line.split()[1]
            if chain in ours or _target(line) in ours:
                continue
        kept.append(line)
    return "\n".join(kept) + "\n"


def remove_chains(before: dict[str, list[str]]) -> None:
    """Delete the KUBE-*/CNI-* chains that were not there before, and every rule using them."""
    for cmd in ("iptables", "ip6tables"):
        if not shutil.which(f"{cmd}-restore"):
            continue
        existed = set(before.get(cmd, []))
        for table in TABLES:
            dump = _save(cmd, table)
            ours = {line[1:].split()[0] for line in dump.splitlines()
                    if line.startswith(":") and line[1:].startswith(CHAIN_PREFIXES)
                    and f"{table}/{line[1:].split()[0]}" not in existed}
            if not ours:
                continue
            subprocess.run([f"{cmd}-restore", "-w"], input=without_chains(dump, ours),
                           text=True, capture_output=True, check=True)


# ----------------------------------------------------------------------------- the rest


def mounts_under(prefixes: list[Path]) -> list[str]:
    """Mount points under any of ``prefixes``, deepest first."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == str(p) or point.startswith(f"{p}/") for p in prefixes):
            found.append(point)
    return sorted(set(found), key=lambda p: p.count("/"), reverse=True)


def unmount_under(prefixes: list[Path]) -> None:
    for _ in range(3):  # bind mounts can stack
        points = mounts_under(prefixes)
        if not points:
            return
        for point in points:
            res = subprocess.run(["umount", point], capture_output=True, text=True)
            if res.returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True)


def delete_links(names: list[str], bridge: str) -> None:
    """The node's bridges, and any veth still attached to the pods' bridge."""
    out = subprocess.run(["ip", "-o", "link", "show", "master", bridge], capture_output=True,
                         text=True).stdout
    veths = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line]
    for name in [*veths, *names]:
        subprocess.run(["ip", "link", "delete", name], capture_output=True)


def restore_sysctls(values: dict[str, str]) -> None:
    for name, value in values.items():
        path = _sysctl_path(name)
        with contextlib.suppress(OSError):
            if path.read_text().strip() != value:
                path.write_text(value)


def remove_cgroups(top: str = "kubepods") -> None:
    """The cgroup ``top`` (kubelet's, dockerd's) in every hierarchy, deepest first; they are
    empty by now."""
    root = Path("/sys/fs/cgroup")
    candidates = [root / top, *(d / top for d in root.iterdir() if d.is_dir())]
    for base in candidates:
        if not base.is_dir():
            continue
        dirs = sorted((Path(d) for d, _, _ in os.walk(base)), key=lambda p: len(p.parts),
                      reverse=True)
        for d in dirs:
            with contextlib.suppress(OSError):
                d.rmdir()


def existing(paths: tuple[str, ...] = HARD_CODED_PATHS) -> list[str]:
    return [p for p in paths if os.path.lexists(p)]


def remove_new_paths(existed: list[str], paths: tuple[str, ...] = HARD_CODED_PATHS) -> None:
    """Remove each of ``paths`` that exists now but was not in ``existed``."""
    for path in paths:
        if path in existed or not os.path.lexists(path):
            continue
        unmount_under([Path(path)])
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(path)


def restore(before: dict[str, Any], *, dirs: list[Path], links: list[str], bridge: str) -> None:
    """Undo the node's host changes; its processes must be stopped already."""
    remove_chains(before.get("chains", {}))
    remove_ipsets(before.get("ipsets", []))
    unmount_under(dirs)
    delete_links(links, bridge)
    restore_sysctls(before.get("sysctls", {}))
    remove_cgroups()
    remove_new_paths(before.get("paths", []))
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
    log("host restored: chains, ipsets, mounts, links, sysctls, cgroups and directories")


# ----------------------------------------------------------------------------- snapshot


def _lines(cmd: list[str]) -> list[str]:
    res = subprocess.run(cmd, capture_output=True, text=True)
    return res.stdout.splitlines() if res.returncode == 0 else [f"<{' '.join(cmd)} failed>"]


def snapshot() -> dict[str, Any]:
    """The host state a real node touches, in a form two snapshots can be compared in."""
    def rules(cmd: str) -> list[str]:
        # Counters and the generated-by comments differ between any two dumps.
        return [re.sub(r"\[\d+:\d+\]", "", line) for line in _lines([cmd])
                if not line.startswith("#")]

    cgroups = sorted(str(p) for top in ("kubepods", "docker")
                     for p in Path("/sys/fs/cgroup").glob(f"*/{top}"))
    return {
        "links": sorted(re.sub(r"^\d+: ", "", line).split(":")[0]
                        for line in _lines(["ip", "-o", "link", "show"])),
        "addresses": sorted(" ".join(line.split()[1:4])
                            for line in _lines(["ip", "-o", "addr", "show"])),
        "routes": sorted(_lines(["ip", "route", "show", "table", "all"])),
        "mounts": sorted(line.split()[4] for line in
                         Path("/proc/self/mountinfo").read_text().splitlines()),
        "iptables": rules("iptables-save"),
        "ip6tables": rules("ip6tables-save"),
        "ipsets": sorted(ipsets()),
        "sysctls": read_sysctls(),
        "paths": existing((*HARD_CODED_PATHS, *DOCKER_PATHS)),
        "cgroups": cgroups,
    }
