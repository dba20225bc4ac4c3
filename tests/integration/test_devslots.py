"""DevSlots on a real control plane: the pool, expiry, repair mode, the agent's rights,
the orphan sweep, fresh volumes, and the `chatenv` CLI end to end."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import RBAC_DENIAL, OperatorProcess
from kubehelpers import GROUP, VERSION, Slots, chatenv, condition, not_found, ok_json, wait_until
from kubernetes import client
from local_operator import service_account_kubeconfig

Kubectl = Callable[..., subprocess.CompletedProcess[str]]

pytestmark = pytest.mark.usefixtures("operator")


def ready(slots: Slots, name: str) -> bool:
    c = condition(slots.get(name), "Ready")
    return bool(c and c["status"] == "True")


def test_pool_of_ten_serves_twenty_in_creation_order(slots: Slots) -> None:
    names = [slots.create(issue=i)["metadata"]["name"] for i in range(1, 21)]
    wait_until(lambda: sum(1 for n in names if slots.slot_of(n)) == 10, 60,
               "ten DevSlots to get a number")

    def queued() -> list[str]:
        return [n for n in names if ((slots.get(n) or {}).get("status") or {}).get(
            "phase") == "Queued"]

    wait_until(lambda: len(queued()) == 10, 30, "the other ten to be Queued")
    holders = {n: slots.slot_of(n) for n in names if slots.slot_of(n)}
    assert sorted(holders.values()) == list(range(1, 11))  # distinct, and the lowest ones
    assert list(holders) == names[:10]  # first come, first served
    waiting = queued()
    assert waiting == names[10:]
    for position, name in enumerate(waiting, start=1):
        status = (slots.get(name) or {})["status"]
        assert status["queuePosition"] == position
        c = condition(slots.get(name), "Ready")
        assert c is not None
        assert (c["status"], c["reason"]) == ("False", "PoolExhausted")

    for name in (names[2], names[5], names[7]):
        slots.delete(name)
    freed = {holders[names[2]], holders[names[5]], holders[names[7]]}
    wait_until(lambda: all(slots.slot_of(n) for n in names[10:13]), 120,
               "the three oldest queued DevSlots to get the freed numbers", interval=1)
    assert {slots.slot_of(n) for n in names[10:13]} == freed
    assert not any(slots.slot_of(n) for n in names[13:])
    assert [(slots.get(n) or {})["status"]["queuePosition"] for n in names[13:]] == list(
        range(1, 8))


def test_ttl_warns_then_deletes_everything_and_touch_extends(
        slots: Slots, kubectl: Kubectl, core: client.CoreV1Api, kubeconfig: Path) -> None:
    from datetime import UTC, datetime

    short = slots.create(issue=101, ttl="30s")["metadata"]["name"]
    touched = slots.create(issue=102, ttl="45s")["metadata"]["name"]
    wait_until(lambda: ready(slots, short) and ready(slots, touched), 60, "both slots Ready")
    namespace = (slots.get(short) or {})["status"]["namespace"]
    env = (slots.get(short) or {})["status"]["environment"]
    first_expiry = (slots.get(touched) or {})["status"]["expiresAt"]

    time.sleep(2)  # expiry has one-second resolution: make the touch visibly later
    res = chatenv(kubeconfig, "touch", "--issue", "102", "--repository", slots.repository)
    assert res.returncode == 0, res.stderr
    wait_until(lambda: (slots.get(touched) or {})["status"]["expiresAt"] > first_expiry, 15,
               "touch to push expiresAt out")

    def warned(name: str) -> bool:
        out = kubectl("get", "events", "-n", "default", "--field-selector",
                      f"involvedObject.name={name},reason=ExpiringSoon", "-o", "json").stdout
        return bool(json.loads(out)["items"])

    wait_until(lambda: warned(short), 40, "a Warning Event before expiry")
    assert slots.get(short) is not None  # warned first, deleted later
    wait_until(lambda: slots.get(short) is None, 40, "the DevSlot to expire")
    wait_until(lambda: not_found(lambda: core.read_namespace(namespace)), 120,
               "the slot's namespace to be garbage-collected")
    assert not_found(lambda: slots.custom.get_cluster_custom_object(
        GROUP, VERSION, "chatenvironments", env))
    # Past the expiry it had before the touch, the touched slot is still there.
    deadline = datetime.fromisoformat(first_expiry.replace("Z", "+00:00"))
    while datetime.now(UTC) <= deadline:
        time.sleep(0.5)
    time.sleep(1)
    assert slots.get(touched) is not None


def test_repair_mode_adds_only_the_agent_to_ai_staging(
        slots: Slots, custom: client.CustomObjectsApi, apps: client.AppsV1Api,
        core: client.CoreV1Api, kubectl: Kubectl) -> None:
    staging = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ChatEnvironment",
               "metadata": {"name": "t-staging"}, "spec": {"stage": "ai-staging"}}
    custom.create_cluster_custom_object(GROUP, VERSION, "chatenvironments", staging)
    try:
        kubectl("wait", "--for=condition=Ready", "chatenv/t-staging", "--timeout=90s")
        before = {n.metadata.name for n in core.list_namespace().items}
        name = slots.create(issue=201, mode="repair",
                            agent={"image": "registry.example.com/agent:1"})["metadata"]["name"]
        wait_until(lambda: ready(slots, name), 60, "the repair slot Ready")
        status = (slots.get(name) or {})["status"]
        assert status["namespace"] == "chat-ai-staging"
        assert "slot" not in status
        agent = apps.read_namespaced_deployment(f"agent-{name}", "chat-ai-staging")
        env = {e.name: e.value for e in agent.spec.template.spec.containers[0].env}
        assert (env["ISSUE_NUMBER"], env["MODE"], env["SLOT"]) == ("201", "repair", None)
        binding = client.RbacAuthorizationV1Api(core.api_client).read_namespaced_role_binding(
            f"agent-{name}", "chat-ai-staging")
        assert binding.role_ref.name == "chatenv-agent"
        after = {n.metadata.name for n in core.list_namespace().items}
        assert after - before == set()  # no namespace was created
        slots.delete(name)
        wait_until(lambda: not_found(lambda: apps.read_namespaced_deployment(
            f"agent-{name}", "chat-ai-staging")), 60, "the agent to be collected with its slot")
        assert core.read_namespace("chat-ai-staging").status.phase == "Active"
    finally:
        custom.delete_cluster_custom_object(GROUP, VERSION, "chatenvironments", "t-staging")


def review(api: client.ApiClient, user: str, verb: str, resource: str, namespace: str | None,
           subresource: str = "", group: str = "") -> bool:
    attrs = client.V1ResourceAttributes(verb=verb, resource=resource, namespace=namespace,
                                        subresource=subresource or None, group=group)
    sar = client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
        user=user, groups=["system:serviceaccounts", "system:authenticated"],
        resource_attributes=attrs))
    return bool(client.AuthorizationV1Api(api).create_subject_access_review(sar).status.allowed)


def test_agent_rights_end_at_its_namespace(slots: Slots, api_client: client.ApiClient,
                                           apps: client.AppsV1Api) -> None:
    dev = slots.create(issue=301, agent={"image": "registry.example.com/agent:1",
                                          "env": [{"name": "MODEL", "value": "x"}]})
    plan = slots.create(issue=302, mode="plan", agent={"image": "registry.example.com/agent:1"})
    wait_until(lambda: ready(slots, dev["metadata"]["name"])
               and ready(slots, plan["metadata"]["name"]), 90, "both slots Ready")
    ns = (slots.get(dev["metadata"]["name"]) or {})["status"]["namespace"]
    plan_ns = (slots.get(plan["metadata"]["name"]) or {})["status"]["namespace"]
    agent = apps.read_namespaced_deployment("agent", ns).spec.template.spec
    env = {e.name: e.value for e in agent.containers[0].env}
    assert env["ISSUE_NUMBER"] == "301"
    assert env["MODEL"] == "x"
    assert env["SLOT"] == str((slots.get(dev["metadata"]["name"]) or {})["status"]["slot"])
    assert agent.service_account_name == "agent"

    user = f"system:serviceaccount:{ns}:agent"
    assert review(api_client, user, "create", "deployments", ns, group="apps")
    assert review(api_client, user, "delete", "secrets", ns)
    assert review(api_client, user, "create", "pods", ns, subresource="exec")
    assert review(api_client, user, "get", "pods", ns, subresource="log")
    assert not review(api_client, user, "delete", "pods", ns)
    for other in (plan_ns, "default", "kube-system", "chatenv-system"):
        assert not review(api_client, user, "get", "pods", other), other
        assert not review(api_client, user, "create", "deployments", other, group="apps"), other
    assert not review(api_client, user, "list", "namespaces", None)
    assert not review(api_client, user, "create", "rolebindings", ns,
                      group="rbac.authorization.k8s.io")

    plan_user = f"system:serviceaccount:{plan_ns}:agent"
    assert review(api_client, plan_user, "list", "deployments", plan_ns, group="apps")
    assert not review(api_client, plan_user, "create", "deployments", plan_ns, group="apps")
    assert not review(api_client, plan_user, "get", "secrets", plan_ns)


def test_orphan_sweep_keeps_what_a_person_orphaned(custom: client.CustomObjectsApi,
                                                   core: client.CoreV1Api,
                                                   kubectl: Kubectl,
                                                   operator: OperatorProcess) -> None:
    """`--cascade=orphan` removes the namespace's ownerReference: with the operator's
    labels alone, the sweep never deletes it (a label is easy to put on anything)."""
    name = f"t-orphan-{uuid.uuid4().hex[:6]}"
    ns = f"{name}-ns"
    custom.create_cluster_custom_object(GROUP, VERSION, "chatenvironments", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ChatEnvironment",
        "metadata": {"name": name}, "spec": {"stage": "dev", "namespace": ns}})
    kubectl("wait", "--for=condition=Ready", f"chatenv/{name}", "--timeout=90s")
    try:
        custom.delete_cluster_custom_object(GROUP, VERSION, "chatenvironments", name,
                                            body=client.V1DeleteOptions(
                                                propagation_policy="Orphan"))
        wait_until(lambda: not_found(lambda: custom.get_cluster_custom_object(
            GROUP, VERSION, "chatenvironments", name)), 30, "the owner to be gone")
        wait_until(lambda: not core.read_namespace(ns).metadata.owner_references, 60,
                   "the garbage collector to orphan the namespace")
        sweeps = 'chatenv_object_reconciles_total{controller="pool",name="sweep"}'
        time.sleep(3)  # past the grace period of the tests (3 s): the sweep judges it now
        before = operator.metrics()[sweeps]
        wait_until(lambda: operator.metrics()[sweeps] >= before + 2, 30,
                   "two sweeps (every 2 s in the tests)")
        namespace = core.read_namespace(ns)
        assert namespace.status.phase == "Active"
        assert namespace.metadata.labels["chatenv.dev/environment"] == name
    finally:
        core.delete_namespace(ns)


def test_sweep_leaves_namespaces_with_a_live_owner(custom: client.CustomObjectsApi,
                                                   core: client.CoreV1Api, kubectl: Kubectl,
                                                   operator: OperatorProcess) -> None:
    name = f"t-kept-{uuid.uuid4().hex[:6]}"
    custom.create_cluster_custom_object(GROUP, VERSION, "chatenvironments", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ChatEnvironment",
        "metadata": {"name": name}, "spec": {"stage": "dev", "namespace": f"{name}-ns"}})
    sweeps = 'chatenv_object_reconciles_total{controller="pool",name="sweep"}'
    try:
        kubectl("wait", "--for=condition=Ready", f"chatenv/{name}", "--timeout=90s")
        created = core.read_namespace(f"{name}-ns").metadata.creation_timestamp
        time.sleep(3)  # past the grace period of the tests (3 s): the sweep judges it now
        before = operator.metrics()[sweeps]
        wait_until(lambda: operator.metrics()[sweeps] >= before + 2, 30,
                   "two sweeps (every 2 s in the tests)")
        namespace = core.read_namespace(f"{name}-ns")
        assert namespace.status.phase == "Active"
        assert namespace.metadata.creation_timestamp == created
        assert namespace.metadata.deletion_timestamp is None
    finally:
        custom.delete_cluster_custom_object(GROUP, VERSION, "chatenvironments", name)


def test_reused_slot_number_gets_fresh_volumes(slots: Slots, core: client.CoreV1Api) -> None:
    first = slots.create(issue=401, slot=9)["metadata"]["name"]
    wait_until(lambda: ready(slots, first), 60, "the first occupant Ready")
    status = (slots.get(first) or {})["status"]
    assert status["slot"] == 9
    ns = status["namespace"]
    old_ns_uid = core.read_namespace(ns).metadata.uid
    old_pvc = core.read_namespaced_persistent_volume_claim("data-postgres-0", ns)
    old_secret = core.read_namespaced_secret("postgres-credentials", ns).data
    slots.delete(first)
    # The number is free once the old environment is gone; its namespace may still be
    # terminating, and the new occupant waits for it rather than adopting anything.
    wait_until(lambda: not_found(lambda: slots.custom.get_cluster_custom_object(
        GROUP, VERSION, "chatenvironments", status["environment"])), 60, "slot 9 freed")
    second = slots.create(issue=402, slot=9)["metadata"]["name"]
    wait_until(lambda: ready(slots, second), 180, "the second occupant Ready", interval=1)
    assert (slots.get(second) or {})["status"]["slot"] == 9
    assert core.read_namespace(ns).metadata.uid != old_ns_uid
    pvc = core.read_namespaced_persistent_volume_claim("data-postgres-0", ns)
    assert pvc.metadata.uid != old_pvc.metadata.uid
    assert pvc.spec.volume_name != old_pvc.spec.volume_name
    assert core.read_namespaced_secret("postgres-credentials", ns).data != old_secret


# ---------------------------------------------------------------------- the CLI


def test_cli_end_to_end(slots: Slots, kubeconfig: Path) -> None:
    repo = ["--repository", slots.repository]
    first = ok_json(chatenv(kubeconfig, "ensure-slot", "--issue", "501", *repo))
    slots.names.append(first["name"])
    assert first["created"] is True
    assert first["env"] == "ai"
    assert isinstance(first["slot"], int)
    assert first["namespace"] == f"chat-dev-{first['slot']}"
    again = ok_json(chatenv(kubeconfig, "ensure-slot", "--issue", "501", *repo))
    assert (again["created"], again["slot"], again["name"]) == (False, first["slot"],
                                                                 first["name"])

    ready_out = ok_json(chatenv(kubeconfig, "ensure-ready", "--issue", "501", *repo,
                                "--timeout", "90s"))
    assert ready_out["infraReady"] is True
    assert ready_out["url"] == f"https://dev-{first['slot']}.ai.chat.example.com"
    assert {"slot", "namespace", "env", "url", "created", "infraReady"} <= set(ready_out)

    attached = ok_json(chatenv(kubeconfig, "set", "--slot", str(first["slot"]), "--pr", "77"))
    assert attached["pr"] == 77
    by_pr = ok_json(chatenv(kubeconfig, "ensure-slot", "--pr", "77", *repo))
    assert (by_pr["slot"], by_pr["created"]) == (first["slot"], False)

    md = chatenv(kubeconfig, "comment", "--pr", "77", *repo)
    assert md.returncode == 0
    assert f"dev-{first['slot']}.ai.chat.example.com/jaeger" in md.stdout
    ru = chatenv(kubeconfig, "comment", "--pr", "77", *repo, "--lang", "ru")
    assert "Слот" in ru.stdout
    listed = ok_json(chatenv(kubeconfig, "list", "--json"))
    assert first["name"] in {d["name"] for d in listed}
    table = chatenv(kubeconfig, "list")
    assert first["name"] in table.stdout
    assert table.stdout.startswith("NAME")
    touched = ok_json(chatenv(kubeconfig, "touch", "--pr", "77", *repo))
    assert "refreshedAt" in touched

    gone = ok_json(chatenv(kubeconfig, "cleanup", "--pr", "77", *repo))
    assert gone == {"deleted": [first["name"]]}
    assert ok_json(chatenv(kubeconfig, "cleanup", "--pr", "77", *repo)) == {"deleted": []}


def test_cli_errors_and_exit_codes(slots: Slots, kubeconfig: Path, tmp_path: Path) -> None:
    missing = chatenv(kubeconfig, "touch", "--issue", "999999", "--repository", slots.repository)
    assert missing.returncode == 3
    assert "no DevSlot found for issue 999999" in missing.stderr
    usage = chatenv(kubeconfig, "ensure-slot", "--issue", "1")
    assert usage.returncode == 2
    assert "--repository" in usage.stderr
    bad_ttl = chatenv(kubeconfig, "ensure-slot", "--issue", "1", "--repository", "a/b",
                      "--ttl", "soon")
    assert bad_ttl.returncode == 2
    assert "--ttl" in bad_ttl.stderr
    dead = tmp_path / "dead.kubeconfig"
    dead.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9",
                                               "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "x"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    unreachable = chatenv(dead, "list")
    assert unreachable.returncode == 5
    assert "cannot reach the API server" in unreachable.stderr
    nocfg = chatenv(tmp_path / "absent", "list")
    assert nocfg.returncode == 5


def test_ci_runner_role_is_enough(slots: Slots, kubectl: Kubectl, kubectl_command: list[str],
                                  tmp_path: Path, namespace: str) -> None:
    """The CI runner's identity, bound to deploy/'s chatenv-ci role, can open and close slots."""
    kubectl("create", "serviceaccount", "ci-runner", "-n", namespace)
    binding = f"t-ci-{namespace}"
    kubectl("create", "clusterrolebinding", binding, "--clusterrole=chatenv-ci",
            f"--serviceaccount={namespace}:ci-runner")
    try:
        config = service_account_kubeconfig(kubectl_command, tmp_path / "ci.kubeconfig",
                                            namespace=namespace, account="ci-runner",
                                            duration="6h")
        repo = ["--repository", slots.repository]
        out = ok_json(chatenv(config, "ensure-ready", "--issue", "601", *repo,
                              "--timeout", "90s"))
        slots.names.append(out["name"])
        assert out["infraReady"] is True
        assert ok_json(chatenv(config, "touch", "--issue", "601", *repo))["name"] == out["name"]
        assert ok_json(chatenv(config, "cleanup", "--issue", "601", *repo)) == {
            "deleted": [out["name"]]}
        denied = subprocess.run(
            [sys.executable, "-c", "import sys; from chatenv_operator.kube import Kube, lookup;"
             "k = Kube.from_environment(sys.argv[1]); k.retries = 0;"
             "k.list(lookup('v1', 'Secret'), 'default')", str(config)],
            capture_output=True, text=True, timeout=60)
        assert denied.returncode != 0
        assert "forbidden" in denied.stderr.lower()
    finally:
        kubectl("delete", "clusterrolebinding", binding)


def test_operator_was_never_denied_by_its_rbac(operator: OperatorProcess) -> None:
    denied = [line for line in operator.log_lines() if RBAC_DENIAL in line]
    assert not denied, "\n".join(denied[:5])
