"""ChatEnvironment on a real control plane, reconciled by the real operator process."""

from __future__ import annotations

import json
import random
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import RBAC_DENIAL, OperatorProcess
from kubehelpers import condition, not_found, wait_until
from kubernetes import client
from kubernetes.client.rest import ApiException

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
GROUP, VERSION, PLURAL = "chatenv.dev", "v1alpha1", "chatenvironments"

pytestmark = pytest.mark.usefixtures("operator")


class Envs:
    """Creates ChatEnvironments with unique names and namespaces; deletes them afterwards."""

    def __init__(self, custom: client.CustomObjectsApi) -> None:
        self.custom = custom
        self.names: list[str] = []

    def create(self, spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
        name = f"t-{uuid.uuid4().hex[:8]}"
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ChatEnvironment",
                "metadata": {"name": name, **meta},
                "spec": {"stage": "dev", "namespace": f"{name}-ns", **(spec or {})}}
        self.names.append(name)
        return self.custom.create_cluster_custom_object(  # type: ignore[no-any-return]
            GROUP, VERSION, PLURAL, body)

    def get(self, name: str) -> dict[str, Any]:
        return self.custom.get_cluster_custom_object(  # type: ignore[no-any-return]
            GROUP, VERSION, PLURAL, name)

    def patch(self, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_cluster_custom_object(GROUP, VERSION, PLURAL, name, {"spec": spec})

    def delete(self, name: str) -> None:
        try:
            self.custom.delete_cluster_custom_object(GROUP, VERSION, PLURAL, name)
        except ApiException as e:
            if e.status != 404:
                raise


@pytest.fixture
def envs(custom: client.CustomObjectsApi) -> Iterator[Envs]:
    e = Envs(custom)
    yield e
    for name in e.names:
        e.delete(name)


def ready(envs: Envs, name: str) -> bool:
    c = condition(envs.get(name), "Ready")
    return bool(c and c["status"] == "True")


def wait_ready(kubectl: Kubectl, name: str, timeout: int = 90) -> None:
    kubectl("wait", "--for=condition=Ready", f"chatenv/{name}", f"--timeout={timeout}s",
            timeout=timeout + 10)


EXPECTED_CHILDREN = [
    ("configmap", "chat-config"), ("configmap", "jaeger-config"),
    ("secret", "postgres-credentials"), ("secret", "redis-credentials"),
    ("service", "postgres"), ("statefulset", "postgres"), ("pvc", "data-postgres-0"),
    ("service", "redis"), ("deployment", "redis"),
    ("service", "jaeger"), ("deployment", "jaeger"),
    ("deployment", "chat"), ("service", "chat"), ("ingress", "chat"),
    ("networkpolicy", "chat-ingress-only"), ("resourcequota", "chat-quota"),
    ("limitrange", "chat-limits"),
]


def test_apply_creates_every_child_and_becomes_ready(envs: Envs, kubectl: Kubectl,
                                                     core: client.CoreV1Api) -> None:
    env = envs.create()
    name, ns = env["metadata"]["name"], env["spec"]["namespace"]
    wait_ready(kubectl, name)

    namespace = core.read_namespace(ns)
    owner = namespace.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.uid) == ("ChatEnvironment", name, env["metadata"]["uid"])
    assert namespace.metadata.labels["chatenv.dev/environment"] == name
    for kind, child in EXPECTED_CHILDREN:
        kubectl("get", kind, child, "-n", ns)

    status = envs.get(name)["status"]
    assert status["namespace"] == ns
    assert status["url"] == "https://dev.chat.example.com"
    assert status["observedGeneration"] == 1
    assert {k: v["ready"] for k, v in status["components"].items()} == {
        "postgres": True, "redis": True, "jaeger": True, "chat": True, "ingress": True}
    for type_, expected in (("Ready", "True"), ("Progressing", "False"), ("Degraded", "False")):
        c = condition(envs.get(name), type_)
        assert c is not None
        assert c["status"] == expected
        assert {"reason", "message", "lastTransitionTime", "observedGeneration"} <= set(c)

    printed = kubectl("get", "chatenv", name).stdout
    assert "dev" in printed
    assert ns in printed
    assert "True" in printed
    events = kubectl("get", "events", "-n", "default", "--field-selector",
                     f"involvedObject.name={name}", "-o", "json").stdout
    reasons = {e["reason"] for e in json.loads(events)["items"]}
    assert {"Applied", "Ready"} <= reasons


def test_secrets_are_random_and_wired_into_the_chat_service(envs: Envs, kubectl: Kubectl,
                                                            core: client.CoreV1Api,
                                                            apps: client.AppsV1Api) -> None:
    a, b = envs.create(), envs.create()
    wait_ready(kubectl, a["metadata"]["name"])
    wait_ready(kubectl, b["metadata"]["name"])
    pa = core.read_namespaced_secret("postgres-credentials", a["spec"]["namespace"]).data
    pb = core.read_namespaced_secret("postgres-credentials", b["spec"]["namespace"]).data
    assert pa["password"] != pb["password"]
    import base64

    assert len(base64.b64decode(pa["password"])) >= 24
    chat = apps.read_namespaced_deployment("chat", a["spec"]["namespace"])
    container = chat.spec.template.spec.containers[0]
    refs = {e.name: e.value_from.secret_key_ref.name for e in container.env if e.value_from}
    assert refs == {"POSTGRES_PASSWORD": "postgres-credentials",
                    "REDIS_PASSWORD": "redis-credentials"}
    assert container.env_from[0].config_map_ref.name == "chat-config"
    assert container.readiness_probe.http_get.path == "/health/readyz"
    assert container.liveness_probe.http_get.path == "/health/livez"
    assert chat.spec.template.spec.init_containers[0].command[-1] == "migrate"
    config = core.read_namespaced_config_map("chat-config", a["spec"]["namespace"]).data
    assert config["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"


def test_drift_is_repaired(envs: Envs, kubectl: Kubectl, apps: client.AppsV1Api,
                           core: client.CoreV1Api) -> None:
    env = envs.create()
    name, ns = env["metadata"]["name"], env["spec"]["namespace"]
    wait_ready(kubectl, name)
    old_uid = apps.read_namespaced_deployment("chat", ns).metadata.uid
    apps.delete_namespaced_deployment("chat", ns)
    kubectl("patch", "service", "redis", "-n", ns, "--type=json",
            "-p", '[{"op": "replace", "path": "/spec/ports/0/port", "value": 7000}]')
    core.patch_namespaced_config_map("chat-config", ns, {"data": {"POSTGRES_HOST": "evil"}})

    def restored() -> bool:
        try:
            dep = apps.read_namespaced_deployment("chat", ns)
        except ApiException:
            return False
        port = core.read_namespaced_service("redis", ns).spec.ports[0].port
        host = core.read_namespaced_config_map("chat-config", ns).data["POSTGRES_HOST"]
        return dep.metadata.uid != old_uid and port == 6379 and host == "postgres-rw"

    wait_until(restored, 20, "the deleted Deployment and the edited objects to be restored")
    wait_ready(kubectl, name)


def test_image_change_rolls_out_and_suspend_keeps_data(envs: Envs, kubectl: Kubectl,
                                                       apps: client.AppsV1Api,
                                                       core: client.CoreV1Api) -> None:
    env = envs.create()
    name, ns = env["metadata"]["name"], env["spec"]["namespace"]
    wait_ready(kubectl, name)
    secret_before = core.read_namespaced_secret("postgres-credentials", ns).data
    pvc_uid = core.read_namespaced_persistent_volume_claim("data-postgres-0", ns).metadata.uid

    envs.patch(name, {"chat": {"image": "registry.example.com/chatenv/chat:0.2.0"}})
    wait_until(lambda: apps.read_namespaced_deployment("chat", ns).spec.template.spec
               .containers[0].image == "registry.example.com/chatenv/chat:0.2.0", 20,
               "the new image in the Deployment")
    wait_until(lambda: ready(envs, name) and envs.get(name)["status"]["observedGeneration"] == 2,
               60, "Ready for generation 2")

    envs.patch(name, {"suspended": True})
    wait_until(lambda: all(
        apps.read_namespaced_deployment(d, ns).spec.replicas == 0 for d in ("chat", "redis",
                                                                            "jaeger"))
        and apps.read_namespaced_stateful_set("postgres", ns).spec.replicas == 0, 20,
        "every workload scaled to zero")
    wait_until(lambda: not core.list_namespaced_pod(ns).items, 60, "all pods gone")
    c = wait_until(lambda: condition(envs.get(name), "Ready"), 10, "a Ready condition")
    wait_until(lambda: condition(envs.get(name), "Ready")["reason"] == "Suspended", 20,
               "Ready=False reason Suspended")
    assert c["status"] == "False"
    assert core.read_namespaced_persistent_volume_claim(
        "data-postgres-0", ns).metadata.uid == pvc_uid

    envs.patch(name, {"suspended": False})
    wait_until(lambda: ready(envs, name), 60, "Ready again after resuming")
    assert apps.read_namespaced_deployment("chat", ns).spec.replicas == 2
    assert core.read_namespaced_persistent_volume_claim(
        "data-postgres-0", ns).metadata.uid == pvc_uid
    assert core.read_namespaced_secret("postgres-credentials", ns).data == secret_before


def test_delete_removes_namespace_and_keep_on_delete_keeps_the_volume(
        envs: Envs, kubectl: Kubectl, core: client.CoreV1Api) -> None:
    plain = envs.create()
    kept = envs.create({"postgres": {"keepOnDelete": True}})
    for env in (plain, kept):
        wait_ready(kubectl, env["metadata"]["name"])

    def volume(env: dict[str, Any]) -> str:
        return str(core.read_namespaced_persistent_volume_claim(
            "data-postgres-0", env["spec"]["namespace"]).spec.volume_name)

    plain_pv, kept_pv = volume(plain), volume(kept)
    wait_until(lambda: core.read_persistent_volume(kept_pv).spec
               .persistent_volume_reclaim_policy == "Retain", 20, "reclaim policy Retain")
    assert core.read_persistent_volume(plain_pv).spec.persistent_volume_reclaim_policy == "Delete"

    for env in (plain, kept):
        envs.delete(env["metadata"]["name"])
    for env in (plain, kept):
        ns = env["spec"]["namespace"]
        wait_until(lambda ns=ns: not_found(lambda: core.read_namespace(ns)), 120,
                   f"namespace {ns} to be garbage-collected")
    wait_until(lambda: not_found(lambda: core.read_persistent_volume(plain_pv)), 60,
               "the plain environment's volume to be deleted")
    pv = core.read_persistent_volume(kept_pv)
    assert pv.spec.persistent_volume_reclaim_policy == "Retain"
    core.delete_persistent_volume(kept_pv)


def test_a_pass_over_a_settled_environment_sends_no_request(
        envs: Envs, kubectl: Kubectl, operator: OperatorProcess,
        custom: client.CustomObjectsApi) -> None:
    env = envs.create()
    name = env["metadata"]["name"]
    wait_ready(kubectl, name)
    time.sleep(3)  # let status updates of the last rollout settle
    reconciles = f'chatenv_object_reconciles_total{{controller="chatenvironment",name="{name}"}}'
    sent = 'chatenv_reconcile_api_requests_total{controller="chatenvironment"}'
    before = operator.metrics()
    # An annotation change triggers a full pass without changing the spec.
    for i in range(3):
        custom.patch_cluster_custom_object(GROUP, VERSION, PLURAL, name, {
            "metadata": {"annotations": {"test.chatenv.dev/poke": str(i)}}})
        wait_until(lambda i=i: operator.metrics()[reconciles] >= before[reconciles] + i + 1, 20,
                   f"pass {i + 1}")
    # Every child is read from the watch-fed cache and found as specified: not one request,
    # reads included.
    assert operator.metrics()[sent] == before[sent]


def test_invalid_spec_the_schema_cannot_catch(envs: Envs, operator: OperatorProcess) -> None:
    env = envs.create({"namespace": "kube-system"})
    name = env["metadata"]["name"]
    c = wait_until(lambda: condition(envs.get(name), "Ready"), 20, "a Ready condition")
    assert (c["status"], c["reason"]) == ("False", "InvalidSpec")
    assert "reserved" in c["message"]
    assert condition(envs.get(name), "Degraded")["status"] == "True"  # type: ignore[index]
    reconciles = f'chatenv_object_reconciles_total{{controller="chatenvironment",name="{name}"}}'
    # The pass is counted when it returns, a moment after it wrote the condition.
    settled = wait_until(lambda: operator.metrics().get(reconciles), 10, "the pass counted")
    time.sleep(5)
    assert operator.metrics()[reconciles] == settled  # no retry loop at all


def test_namespace_of_someone_else_is_not_taken(envs: Envs, core: client.CoreV1Api,
                                                namespace: str) -> None:
    env = envs.create({"namespace": namespace})
    name = env["metadata"]["name"]
    c = wait_until(lambda: condition(envs.get(name), "Ready"), 20, "a Ready condition")
    assert (c["status"], c["reason"]) == ("False", "NamespaceConflict")
    assert core.read_namespace(namespace).metadata.owner_references is None
    assert not core.list_namespaced_config_map(namespace, label_selector=(
        "app.kubernetes.io/managed-by=chatenv-operator")).items


def test_operator_killed_during_creation_converges(envs: Envs, kubectl: Kubectl,
                                                   operator: OperatorProcess,
                                                   core: client.CoreV1Api,
                                                   apps: client.AppsV1Api) -> None:
    rng = random.Random(4)  # fixed seed: the same kill moments on every run
    created = [envs.create() for _ in range(3)]
    for _ in range(4):
        time.sleep(rng.uniform(0.05, 0.8))
        operator.kill()
        operator.start()
    for env in created:
        wait_ready(kubectl, env["metadata"]["name"], timeout=120)
    secrets_now = {}
    for env in created:
        ns = env["spec"]["namespace"]
        assert len(apps.list_namespaced_deployment(ns).items) == 3  # chat, redis, jaeger
        assert len(apps.list_namespaced_stateful_set(ns).items) == 1
        assert len(core.list_namespaced_persistent_volume_claim(ns).items) == 2  # pg, redis
        secrets_now[ns] = core.read_namespaced_secret("postgres-credentials", ns).data
    operator.kill()
    operator.start()
    time.sleep(3)
    for env in created:
        ns = env["spec"]["namespace"]
        assert core.read_namespaced_secret("postgres-credentials", ns).data == secrets_now[ns]
        wait_ready(kubectl, env["metadata"]["name"])


INVALID = [
    ({"stage": "production"}, 'spec.stage: Unsupported value: "production"'),
    ({"stage": "ai"}, "spec.slot is required for stage ai"),
    ({"stage": "dev", "slot": 3}, "spec.slot is required for stage ai and not allowed"),
    ({"stage": "ai-repair"}, 'spec.stage: Unsupported value: "ai-repair": supported values: '
                             '"dev", "ai-staging", "ai"'),
    ({"stage": "dev", "chat": {"resources": {"limits": {"memory": "1.5 Gi"}}}},
     "spec.chat.resources.limits.memory"),
    ({"stage": "dev", "namespace": "Bad_Name"}, "spec.namespace"),
    ({"stage": "dev", "host": "not a host"}, "spec.host"),
    ({"stage": "dev", "chat": {"replicas": 50}}, "spec.chat.replicas"),
    ({"stage": "dev", "chat": {"env": [{"name": "POSTGRES_PASSWORD", "value": "x"}]}},
     "cannot override the variables the operator wires"),
    ({"stage": "dev", "tls": {"mode": "clusterIssuer"}}, "spec.tls.clusterIssuer is required"),
    ({"stage": "dev", "tls": {"mode": "secret"}}, "spec.tls.secretName is required"),
    ({"stage": "dev", "postgres": {"storage": {"size": "lots"}}}, "spec.postgres.storage.size"),
    ({"stage": "dev", "jaeger": {"maxTraces": 5}}, "spec.jaeger.maxTraces"),
    ({"stage": "dev", "chat": {"resources": {"limits": {"cpu": "many"}}}},
     "spec.chat.resources.limits.cpu"),
]


@pytest.mark.parametrize(("spec", "message"), INVALID, ids=[m for _, m in INVALID])
def test_invalid_chatenvironment_is_rejected_at_admission(kubectl: Kubectl, spec: dict[str, Any],
                                                          message: str) -> None:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ChatEnvironment",
            "metadata": {"name": f"t-bad-{uuid.uuid4().hex[:6]}"}, "spec": spec}
    res = kubectl("apply", "-f", "-", stdin=json.dumps(body), check=False)
    assert res.returncode != 0, f"accepted: {spec}"
    assert message in res.stderr


def test_immutable_fields_are_rejected_on_update(envs: Envs, custom: client.CustomObjectsApi
                                                 ) -> None:
    env = envs.create()
    name = env["metadata"]["name"]
    for spec, message in (({"namespace": "elsewhere"}, "spec.namespace is immutable"),
                          ({"stage": "ai-staging"}, "spec.stage is immutable")):
        with pytest.raises(ApiException) as err:
            custom.patch_cluster_custom_object(GROUP, VERSION, PLURAL, name, {"spec": spec})
        assert err.value.status == 422
        assert message in err.value.body


def test_operator_was_never_denied(operator: OperatorProcess) -> None:
    """Runs last in this module: the operator's ServiceAccount had every right it used."""
    denied = [line for line in operator.log_lines() if RBAC_DENIAL in line]
    assert not denied, "\n".join(denied[:5])
    assert operator.metrics()['chatenv_reconcile_failures_total{controller="chatenvironment"}'] \
        == 0
