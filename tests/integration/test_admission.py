"""What the identities deploy/ defines may not do, sent as them to the real API server:
the operator's ServiceAccount outside the namespaces it manages (RBAC and the admission
policy chatenv-operator), an agent with another environment's host (chatenv-ingress-host)
or a load balancer (the quota), the staging deployer beyond spec.chat.image
(chatenv-staging-deployer).

Every request that must be refused is sent with --dry-run=server where it would change
something: admission runs for it in full, and if a refusal were missing nothing happens to
the cluster the tests run against.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from conftest import ROOT

from chatenv_operator.builders import namespace as ns_builder
from chatenv_operator.config import load_config
from chatenv_operator.environment import resolve

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
OPERATOR = "system:serviceaccount:chatenv-system:chatenv-operator"
HOST = "mine.ai.chat.example.com"


def as_(kubectl: Kubectl, user: str, *args: str, dry_run: bool = True
        ) -> subprocess.CompletedProcess[str]:
    return kubectl(*args, f"--as={user}", *(["--dry-run=server"] if dry_run else []),
                   check=False)


def refused(res: subprocess.CompletedProcess[str], why: str) -> None:
    assert res.returncode != 0, f"allowed, but must not be: {res.stdout}"
    assert why in res.stderr, res.stderr


def apply(kubectl: Kubectl, user: str, manifest: dict[str, Any]
          ) -> subprocess.CompletedProcess[str]:
    """Create ``manifest`` as ``user``, dry run."""
    return kubectl("create", "-f", "-", f"--as={user}", "--dry-run=server",
                   stdin=json.dumps(manifest), check=False)


def wait_for_policies(kubectl: Kubectl) -> None:
    """A new binding takes a moment to reach the API server's admission."""
    probe = {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "probe", "namespace": "kube-system"}}
    deadline = time.monotonic() + 30
    while apply(kubectl, OPERATOR, probe).returncode == 0:
        assert time.monotonic() < deadline, "the operator's admission policy never applied"
        time.sleep(1)


@pytest.fixture(scope="module")
def managed(installed: None, kubectl: Kubectl) -> Iterator[str]:
    """A namespace as the operator makes them: labelled as managed, naming its host."""
    name = f"t-adm-{uuid.uuid4().hex[:6]}"
    kubectl("create", "-f", "-", stdin=json.dumps({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "annotations": {"chatenv.dev/host": HOST}, "labels": {
            "app.kubernetes.io/managed-by": "chatenv-operator",
            "chatenv.dev/environment": name, "chatenv.dev/test": "true"}}}))
    wait_for_policies(kubectl)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def unmanaged(installed: None, kubectl: Kubectl) -> Iterator[str]:
    name = f"t-other-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def configmap(namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x", "namespace": namespace}, "data": {"a": "b"}}


# --------------------------------------------------------------------------- the operator


def test_the_operator_reads_secrets_in_its_own_namespace_only(
        kubectl: Kubectl, managed: str) -> None:
    for args in (("get", "secrets", "-A"), ("get", "secret", "x", "-n", "kube-system"),
                 ("get", "secrets", "-n", managed), ("get", "secret", "x", "-n", managed)):
        res = as_(kubectl, OPERATOR, *args, dry_run=False)
        assert res.returncode != 0, args
        assert "forbidden" in res.stderr.lower(), res.stderr
    own = as_(kubectl, OPERATOR, "get", "secret", "no-such-secret", "-n", "chatenv-system",
              dry_run=False)
    assert "NotFound" in own.stderr, own.stderr  # allowed: it holds its copies there


@pytest.mark.parametrize("where", ["kube-system", "default", "unmanaged"])
def test_the_operator_writes_nothing_outside_the_namespaces_it_manages(
        kubectl: Kubectl, unmanaged: str, where: str) -> None:
    namespace = unmanaged if where == "unmanaged" else where
    why = "writes only in namespaces it manages"
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "x", "namespace": namespace},
                  "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
                      "metadata": {"labels": {"a": "b"}},
                      "spec": {"containers": [{"name": "x", "image": "x"}]}}}}
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
              "metadata": {"name": "x", "namespace": namespace}}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "x", "namespace": namespace},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": "chatenv-agent"},
               "subjects": [{"kind": "ServiceAccount", "name": "default",
                             "namespace": namespace}]}
    for manifest in (deployment, secret, configmap(namespace), binding):
        refused(apply(kubectl, OPERATOR, manifest), why)
    refused(as_(kubectl, OPERATOR, "delete", "service", "kubernetes", "-n", "default"), why)


def test_the_operator_changes_no_namespace_it_did_not_make(kubectl: Kubectl,
                                                          unmanaged: str) -> None:
    why = "changes or deletes only the namespaces it made"
    refused(as_(kubectl, OPERATOR, "delete", "namespace", unmanaged), why)
    refused(as_(kubectl, OPERATOR, "label", "namespace", "default", "x=y"), why)
    refused(as_(kubectl, OPERATOR, "label", "namespace", "default",
                "app.kubernetes.io/managed-by=chatenv-operator"), why)
    refused(apply(kubectl, OPERATOR, {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": f"t-free-{uuid.uuid4().hex[:6]}",
        "labels": {"app.kubernetes.io/managed-by": "chatenv-operator"}}}),
        "is owned by a ChatEnvironment")


def test_the_operator_still_does_its_work_where_it_manages(kubectl: Kubectl,
                                                           managed: str) -> None:
    ok = apply(kubectl, OPERATOR, configmap(managed))
    assert ok.returncode == 0, ok.stderr
    held = apply(kubectl, OPERATOR, {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                                     "metadata": {"name": "x", "namespace": "chatenv-system"}})
    assert held.returncode == 0, held.stderr
    refused(apply(kubectl, OPERATOR, configmap("chatenv-system")), "only Secrets and Leases")
    refused(apply(kubectl, OPERATOR, {
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": "t", "namespace": managed,
                     "annotations": {"kubernetes.io/service-account.name": "default"}}}),
        "makes Opaque Secrets only")


def test_the_operator_binds_the_agent_roles_to_its_namespaces_accounts_only(
        kubectl: Kubectl, managed: str) -> None:
    def binding(role: str, subject_namespace: str) -> dict[str, Any]:
        return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "agent", "namespace": managed},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": role},
                "subjects": [{"kind": "ServiceAccount", "name": "agent",
                              "namespace": subject_namespace}]}

    ok = apply(kubectl, OPERATOR, binding("chatenv-agent", managed))
    assert ok.returncode == 0, ok.stderr
    refused(apply(kubectl, OPERATOR, binding("chatenv-agent", "kube-system")),
            "to ServiceAccounts of the binding's own namespace")
    refused(apply(kubectl, OPERATOR, binding("cluster-admin", managed)), "forbidden")


def test_the_operator_cannot_give_another_volume_away(kubectl: Kubectl) -> None:
    name = f"t-pv-{uuid.uuid4().hex[:6]}"
    kubectl("create", "-f", "-", stdin=json.dumps({
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                 "persistentVolumeReclaimPolicy": "Retain",
                 "hostPath": {"path": f"/tmp/{name}"}}}))
    try:
        why = "only sets Retain on a volume"
        refused(as_(kubectl, OPERATOR, "patch", "pv", name, "--type=merge", "-p",
                    '{"spec":{"persistentVolumeReclaimPolicy":"Delete"}}'), why)
        refused(as_(kubectl, OPERATOR, "patch", "pv", name, "--type=merge", "-p",
                    '{"spec":{"claimRef":{"namespace":"x","name":"data-postgres-0"}}}'), why)
        kubectl("label", "pv", name, "chatenv.dev/retained-for=e")  # one it retained itself
        ok = as_(kubectl, OPERATOR, "patch", "pv", name, "--type=merge", "-p",
                 '{"spec":{"persistentVolumeReclaimPolicy":"Delete"}}')
        assert ok.returncode == 0, ok.stderr
    finally:
        kubectl("delete", "pv", name, "--wait=false", check=False)


# --------------------------------------------------------------------------- an agent


@pytest.fixture(scope="module")
def agent(kubectl: Kubectl, managed: str) -> str:
    """A slot's agent, with the rights the operator gives one."""
    kubectl("create", "serviceaccount", "agent", "-n", managed)
    kubectl("create", "rolebinding", "agent", "-n", managed, "--clusterrole=chatenv-agent",
            f"--serviceaccount={managed}:agent")
    return f"system:serviceaccount:{managed}:agent"


def ingress(namespace: str, host: str | None, **spec: Any) -> dict[str, Any]:
    backend = {"service": {"name": "chat", "port": {"number": 80}}}
    rule: dict[str, Any] = {"http": {"paths": [{"path": "/api/login", "pathType": "Prefix",
                                                "backend": backend}]}}
    if host:
        rule["host"] = host
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "mine", "namespace": namespace},
            "spec": {"rules": [rule], **spec}}


def test_an_agent_cannot_take_another_environments_host(kubectl: Kubectl, managed: str,
                                                        agent: str) -> None:
    ok = apply(kubectl, agent, ingress(managed, HOST))
    assert ok.returncode == 0, ok.stderr
    why = f"serves {HOST} only"
    refused(apply(kubectl, agent, ingress(managed, "dev-1.ai.chat.example.com")), why)
    refused(apply(kubectl, agent, ingress(managed, None)), why)  # every host
    refused(apply(kubectl, agent, ingress(managed, HOST, tls=[
        {"hosts": ["staging.chat.example.com"], "secretName": "x"}])), why)
    backend = {"service": {"name": "chat", "port": {"number": 80}}}
    refused(apply(kubectl, agent, {**ingress(managed, HOST), "spec": {
        "defaultBackend": backend}}), "no default backend")


def test_an_agent_exposes_nothing_but_through_the_ingress(kubectl: Kubectl, managed: str,
                                                          agent: str) -> None:
    config = load_config(ROOT / "services.yaml")
    env = resolve({"metadata": {"name": managed, "uid": "u"},
                   "spec": {"stage": "dev", "namespace": managed}}, config)
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(ns_builder.resource_quota(env)))
    for kind in ("loadbalancer", "nodeport"):
        res = as_(kubectl, agent, "create", "service", kind, f"x-{kind}", "--tcp=80",
                  "-n", managed)
        refused(res, "exceeded quota")


# --------------------------------------------------------------------------- staging


@pytest.fixture
def staging(kubectl: Kubectl, installed: None) -> Iterator[None]:
    kubectl("create", "-f", "-", stdin=json.dumps({
        "apiVersion": "chatenv.dev/v1alpha1", "kind": "ChatEnvironment",
        "metadata": {"name": "ai-staging", "labels": {"team": "a"}},
        "spec": {"stage": "ai-staging", "suspended": False,
                 "chat": {"image": "registry.example.com/chat:1", "replicas": 2}}}))
    yield
    kubectl("delete", "chatenv", "ai-staging", "--wait=false", check=False)


@pytest.fixture
def deployer(kubectl: Kubectl) -> Iterator[str]:
    """An identity bound to chatenv-staging-deployer, as the staging workflow's is."""
    account = f"t-deployer-{uuid.uuid4().hex[:6]}"
    kubectl("create", "serviceaccount", account, "-n", "chatenv-system")
    kubectl("create", "clusterrolebinding", account, "--clusterrole=chatenv-staging-deployer",
            f"--serviceaccount=chatenv-system:{account}")
    yield f"system:serviceaccount:chatenv-system:{account}"
    kubectl("delete", "clusterrolebinding", account, check=False)
    kubectl("delete", "serviceaccount", account, "-n", "chatenv-system", check=False)


def test_the_staging_deployer_changes_the_image_and_nothing_else(
        kubectl: Kubectl, staging: None, deployer: str) -> None:

    def patch(spec: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        return as_(kubectl, deployer, "patch", "chatenv", "ai-staging", "--type=merge",
                   "-p", json.dumps(spec))

    ok = patch({"spec": {"chat": {"image": "registry.example.com/chat:2"}}})
    assert ok.returncode == 0, ok.stderr
    why = "may change spec.chat.image and nothing else"
    for change in ({"spec": {"suspended": True}}, {"spec": {"chat": {"replicas": 20}}},
                   {"spec": {"chat": {"env": [{"name": "DEBUG", "value": "1"}]}}},
                   {"spec": {"postgres": {"image": "attacker/postgres:1"}}},
                   {"spec": {"jaeger": {"publicUI": True}}},
                   {"spec": {"host": "evil.example.com"}},
                   {"metadata": {"labels": {"team": "b"}}},
                   {"metadata": {"annotations": {"chatenv.dev/wake-requested-at":
                                                 "2026-11-27T10:00:00Z"}}}):
        refused(patch(change), why)
    # The policy confines those who may patch but not update: an administrator may.
    admin = kubectl("patch", "chatenv", "ai-staging", "--type=merge", "--dry-run=server",
                    "-p", '{"spec":{"suspended":true}}', check=False)
    assert admin.returncode == 0, admin.stderr
