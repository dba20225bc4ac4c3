"""The local cluster's pure parts: the iptables clean-up, the local overlay of services.yaml,
the add-ons' manifests and the images' content-addressed tags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from localcluster import addons, hoststate, images
from localcluster.install import Ingress, local_services
from localcluster.versions import ROOT, Binaries, Versions

NAT = """\
*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-ABC - [0:0]
:CNI-HOSTPORT-DNAT - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT -j CNI-HOSTPORT-DNAT
-A OUTPUT -d 10.0.0.1/32 -j ACCEPT
-A KUBE-SERVICES -d 10.96.0.1/32 -j KUBE-SVC-ABC
-A KUBE-SVC-ABC -j DNAT --to-destination 10.254.254.1:6443
COMMIT
"""


def test_the_nodes_chains_go_with_every_rule_that_uses_them() -> None:
    ours = {"KUBE-SERVICES", "KUBE-SVC-ABC", "CNI-HOSTPORT-DNAT"}
    assert hoststate.without_chains(NAT, ours) == """\
*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT -d 10.0.0.1/32 -j ACCEPT
COMMIT
"""


def test_the_local_overlay_changes_only_what_is_local() -> None:
    shipped = yaml.safe_load((ROOT / "services.yaml").read_text())
    refs = {"chat": "local/chatenv-chat:1", "operator": "local/chatenv-operator:2",
            "postgres": "local/chatenv-postgres:3", "redis": "local/chatenv-redis:4",
            "jaeger": "local/chatenv-jaeger:5"}
    local = local_services(shipped, refs, Ingress(port=8480))
    assert local["images"] == {k: v for k, v in refs.items() if k != "operator"}
    assert local["stages"]["dev"]["baseDomain"] == "dev.chat.localhost"
    assert local["stages"]["ai"]["host"] == shipped["stages"]["ai"]["host"]
    assert local["defaults"]["tls"] == {"mode": "off"}
    assert local["defaults"]["ingress"]["className"] == "traefik"
    assert local["defaults"]["ingress"]["port"] == 8480
    assert local["slots"] == shipped["slots"]
    # The shipped configuration is untouched.
    assert shipped == yaml.safe_load((ROOT / "services.yaml").read_text())


def _containers(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return list(manifest["spec"]["template"]["spec"]["containers"])


def test_every_add_on_runs_non_root_and_restricted_from_a_local_image() -> None:
    refs = {"coredns": "local/c:1", "traefik": "local/t:1", "local-path-provisioner": "local/l:1",
            "debian": "local/d:1"}
    items = addons.all_addons(refs, 8480, Path("/volumes"))["items"]
    deployments = [i for i in items if i["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} == {
        "coredns", "traefik", "local-path-provisioner"}
    for d in deployments:
        pod = d["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for c in _containers(d):
            assert c["image"].startswith("local/")
            assert c["imagePullPolicy"] == "Never"
            assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
    web = next(p for c in _containers(next(d for d in deployments
                                             if d["metadata"]["name"] == "traefik"))
               for p in c["ports"] if p["name"] == "web")
    assert (web["hostIP"], web["hostPort"]) == ("127.0.0.1", 8480)
    for role in (i for i in items if i["kind"] == "ClusterRole"):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]


@pytest.fixture
def fake_binaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Binaries:
    """Binaries whose paths are small files in a temporary cache."""
    monkeypatch.setattr(images, "CACHE_ROOT", tmp_path)
    b = Binaries(Versions.pinned())
    real_path = Binaries.path

    def path(self: Binaries, name: str) -> Path:
        p = tmp_path / "bin" / Path(real_path(self, name)).name
        p.parent.mkdir(exist_ok=True)
        if not p.exists():
            p.write_text(name)
        return p

    monkeypatch.setattr(Binaries, "path", path)
    monkeypatch.setattr(images, "_build_pause", lambda: path(b, "kubectl"))
    return b


def test_an_image_tag_follows_its_inputs(fake_binaries: Binaries) -> None:
    first = images.Catalog(fake_binaries).ref("coredns")
    assert first.startswith("local/chatenv-coredns:")
    assert images.Catalog(fake_binaries).ref("coredns") == first  # stable
    fake_binaries.path("coredns").write_text("another build")
    assert images.Catalog(fake_binaries).ref("coredns") != first


def test_a_build_removes_only_the_tags_it_replaced() -> None:
    current = ["local/chatenv-chat:new1", "local/chatenv-python:base", "local/chatenv-debian:d"]
    listed = ["local/chatenv-chat:new1", "local/chatenv-chat:old1", "local/chatenv-chat:old2",
              "local/chatenv-python:base", "local/chatenv-operator:other",
              "local/chatenv-traefik:t", "local/chatenv-debian:d"]
    # Older chat tags go; the current ones stay, and so do images this build did not make
    # (the operator's, the node's), whatever their age.
    assert images.superseded(listed, current) == ["local/chatenv-chat:old1",
                                                  "local/chatenv-chat:old2"]
    assert images.superseded(current, current) == []
