"""Every builder's whole output compared to an expected manifest (tests/unit/golden/).

The expected files were written once from the builders and read line by line; a
change to a builder must change its golden file in the same commit, on purpose.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from chatenv_operator.builders import chat, data, ingress, jaeger, namespace, postgres, redis
from chatenv_operator.builders.plan import plan
from chatenv_operator.builders.render import render
from chatenv_operator.config import load_config
from chatenv_operator.environment import Environment, resolve

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
UID = "11111111-2222-3333-4444-555555555555"


def environment(spec: dict[str, Any], name: str = "slot-3") -> Environment:
    config = load_config(ROOT / "services.yaml")
    body = {"apiVersion": "chatenv.dev/v1alpha1", "kind": "ChatEnvironment",
            "metadata": {"name": name, "uid": UID, "generation": 1}, "spec": spec}
    return resolve(body, config)


AI = environment({"stage": "ai", "slot": 3})
PLAIN = environment({"stage": "dev", "namespace": "team-dev", "host": "chat.internal.example.com",
                     "suspended": True, "tls": {"mode": "off"}, "jaeger": {"enabled": False},
                     "chat": {"image": "registry.example.com/chat:pr-7", "replicas": 1,
                              "env": [{"name": "FEATURE_X", "value": "on"}]},
                     "postgres": {"storage": {"size": "5Gi", "storageClassName": "fast"}}},
                    name="team")

BUILDERS = {
    "namespace": namespace.namespace,
    "configmap": data.configmap,
    "postgres-service": postgres.postgres_service,
    "postgres-statefulset": postgres.postgres_statefulset,
    "redis-service": redis.redis_service,
    "redis-deployment": redis.redis_deployment,
    "redis-volume-claim": redis.redis_volume_claim,
    "jaeger-configmap": jaeger.jaeger_configmap,
    "jaeger-service": jaeger.jaeger_service,
    "jaeger-deployment": jaeger.jaeger_deployment,
    "chat-deployment": chat.chat_deployment,
    "chat-service": chat.chat_service,
    "ingress": ingress.ingress,
    "network-policy": namespace.network_policy,
    "egress-policy": namespace.egress_policy,
    "agent-egress-policy": namespace.agent_egress_policy,
    "resource-quota": namespace.resource_quota,
    "limit-range": namespace.limit_range,
}


def golden(name: str) -> Any:
    return yaml.safe_load((GOLDEN / f"{name}.yaml").read_text())


@pytest.mark.parametrize("builder", sorted(BUILDERS))
def test_builder_matches_expected_manifest(builder: str) -> None:
    assert BUILDERS[builder](AI) == golden(f"ai-{builder}")


@pytest.mark.parametrize("builder", ["namespace", "chat-deployment", "postgres-statefulset",
                                     "ingress", "configmap", "redis-deployment"])
def test_builder_variant_matches_expected_manifest(builder: str) -> None:
    assert BUILDERS[builder](PLAIN) == golden(f"plain-{builder}")


def test_asleep_the_host_goes_to_the_waker_in_the_operators_namespace() -> None:
    env = dataclasses.replace(AI, sleeping=True, to_waker=True,
                              operator_namespace="chatenv-system")
    assert ingress.ingress(env) == golden("ai-ingress-waker")
    assert ingress.waker_service(env, "chatenv-system") == golden("ai-waker-service")
    assert namespace.network_policy(env) == golden("ai-network-policy-operator")
    workloads = (chat.chat_deployment, redis.redis_deployment, postgres.postgres_statefulset)
    assert {build(env)["spec"]["replicas"] for build in workloads} == {0}
    assert {build(AI)["spec"]["replicas"] for build in workloads} == {1, 2}


def test_secrets_carry_the_given_passwords() -> None:
    assert data.postgres_secret(AI, "p4ss") == golden("ai-postgres-secret")
    assert data.redis_secret(AI, "r3dis") == golden("ai-redis-secret")


def test_the_plan_reads_as_steps() -> None:
    p = plan(AI)
    assert p.namespace == golden("ai-namespace")
    assert [s.name for s in p.steps] == [
        "config", "postgres", "redis", "jaeger", "chat", "ingress", "policy"]
    assert p.components == ("postgres", "redis", "jaeger", "chat", "ingress")
    # Nothing is gated: the chat pods wait for their data services themselves.
    assert all(p.after(s.name) == () for s in p.steps)
    assert p.step("chat").ready.key == "Deployment/chat"  # type: ignore[union-attr]
    assert p.step("chat").objects[0] == golden("ai-chat-deployment")
    assert [s.name for s in p.steps if s.once] == ["config"]


def test_a_disabled_step_is_still_described_so_it_can_be_pruned() -> None:
    jaeger = plan(PLAIN).step("jaeger")
    assert not jaeger.enabled
    assert {k.kind for k in jaeger.kinds} == {"ConfigMap", "Service", "Deployment"}
    for m in jaeger.objects:  # pruned by this label, not by name
        assert m["metadata"]["labels"]["app.kubernetes.io/component"] == "jaeger"
    assert not any(m["metadata"]["name"].startswith("jaeger") for m in render(PLAIN))


def test_render_lists_every_object_once_with_placeholder_secrets() -> None:
    objects = render(AI)
    keys = [(m["kind"], m["metadata"]["name"]) for m in objects]
    assert len(keys) == len(set(keys)) == 21
    secrets = [m for m in objects if m["kind"] == "Secret"]
    assert all("generated by the operator" in m["stringData"]["password"] for m in secrets)


def test_nothing_cluster_scoped_but_the_namespace() -> None:
    for env in (AI, PLAIN):
        for m in render(env):
            if m["kind"] == "Namespace":
                assert m["metadata"]["ownerReferences"][0]["uid"] == UID
            else:
                assert m["metadata"]["namespace"] == env.namespace, m["kind"]


def test_suspended_environment_runs_no_pods() -> None:
    for m in render(PLAIN):
        if m["kind"] in ("Deployment", "StatefulSet"):
            assert m["spec"]["replicas"] == 0, m["metadata"]["name"]


def test_every_pod_passes_the_restricted_profile() -> None:
    for m in render(AI):
        if m["kind"] not in ("Deployment", "StatefulSet"):
            continue
        pod = m["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in pod["containers"] + pod.get("initContainers", []):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"] == {"drop": ["ALL"]}
            assert sc["readOnlyRootFilesystem"] is True
            assert c["resources"]["limits"], c["name"]


def test_config_change_rolls_the_chat_pods() -> None:
    other = environment({"stage": "ai", "slot": 3, "host": "other.ai.chat.example.com"})
    a = chat.chat_deployment(AI)["spec"]["template"]["metadata"]["annotations"]
    b = chat.chat_deployment(other)["spec"]["template"]["metadata"]["annotations"]
    assert a != b


def test_quantities_given_as_integers_become_quantity_text() -> None:
    """`cpu: 1` and `size: 2` pass the schema as integers; manifests carry them as text."""
    env = environment({"stage": "dev", "namespace": "q", "postgres": {"storage": {"size": 2}},
                       "chat": {"resources": {"requests": {"cpu": 1, "memory": "1.5Gi"},
                                              "limits": {"cpu": 2, "memory": "512M"}}}})
    container = chat.chat_deployment(env)["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {"requests": {"cpu": "1", "memory": "1.5Gi"},
                                      "limits": {"cpu": "2", "memory": "512M"}}
    claim = postgres.postgres_statefulset(env)["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "2"
