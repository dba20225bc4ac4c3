"""What the operator shows a cluster admin and a Prometheus user: a missing agent secret and
a slot without an agent in status and Events, no false Warning when a slot number is reused,
the images that run, the pool and phase gauges, no series for deleted objects, structured
log lines."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import OperatorProcess
from kubehelpers import GROUP, VERSION, Slots, condition, not_found, slot_ready, wait_until
from kubernetes import client

Kubectl = Callable[..., subprocess.CompletedProcess[str]]

pytestmark = pytest.mark.usefixtures("operator")


def events(kubectl: Kubectl, name: str, reason: str) -> list[dict[str, Any]]:
    out = kubectl("get", "events", "-n", "default", "--field-selector",
                  f"involvedObject.name={name},reason={reason}", "-o", "json").stdout
    return json.loads(out)["items"]  # type: ignore[no-any-return]


def test_a_missing_agent_secret_shows_in_status_and_events(
        slots: Slots, kubectl: Kubectl, core: client.CoreV1Api, apps: client.AppsV1Api,
        operator: OperatorProcess) -> None:
    secret = f"t-agent-{slots.repository.split('/')[1]}"
    name = slots.create(issue=51, agent={"image": "registry.example.com/agent:1",
                                         "secretRefs": [secret]})["metadata"]["name"]
    c = wait_until(lambda: (condition(slots.get(name), "Ready") or {}).get(
        "reason") == "AgentSecretMissing" and condition(slots.get(name), "Ready"), 60,
        "Ready=False, reason AgentSecretMissing")
    assert c["status"] == "False"
    assert f"agent secret {secret} not found in namespace chatenv-system" in c["message"]
    warned = wait_until(lambda: events(kubectl, name, "AgentSecretMissing"), 10, "the Event")
    assert warned[0]["type"] == "Warning"
    time.sleep(5)  # further passes change nothing: one Event, no failure loop in the log
    assert len(events(kubectl, name, "AgentSecretMissing")) == 1
    assert not [line for line in operator.log_lines()
                if name in line and "reconcile failed" in line]

    core.create_namespaced_secret("chatenv-system", client.V1Secret(  # agents may read it
        metadata=client.V1ObjectMeta(name=secret, labels={"chatenv.dev/agent-secret": "true"}),
        string_data={"TOKEN": "t"}))
    try:
        wait_until(lambda: slot_ready(slots, name), 90, "the agent started once the secret "
                   "exists", interval=1)
        status = (slots.get(name) or {})["status"]
        assert status["images"]["agent"] == "registry.example.com/agent:1"
        assert apps.read_namespaced_deployment("agent", status["namespace"])
    finally:
        core.delete_namespaced_secret(secret, "chatenv-system")


def test_a_slot_without_an_agent_says_so(slots: Slots, kubectl: Kubectl) -> None:
    name = slots.create(issue=52)["metadata"]["name"]
    wait_until(lambda: slot_ready(slots, name), 60, "the slot Ready")
    c = condition(slots.get(name), "Ready")
    assert c is not None
    assert "no agent: spec.agent is not set" in c["message"]
    ready = wait_until(lambda: events(kubectl, name, "Ready"), 10, "the Ready Event")
    assert "no agent" in ready[0]["message"]


def test_a_reused_slot_number_waits_without_a_false_warning(
        slots: Slots, kubectl: Kubectl, core: client.CoreV1Api,
        custom: client.CustomObjectsApi) -> None:
    first = slots.create(issue=61, slot=7)["metadata"]["name"]
    wait_until(lambda: slot_ready(slots, first), 60, "the first occupant Ready")
    namespace = (slots.get(first) or {})["status"]["namespace"]
    # Hold the old namespace in Terminating until the new occupant has seen it.
    core.patch_namespace(namespace, {"metadata": {"finalizers": ["chatenv.dev/test-hold"]}})
    try:
        slots.delete(first)
        wait_until(lambda: not_found(lambda: custom.get_cluster_custom_object(
            GROUP, VERSION, "chatenvironments", "slot-7")), 60, "slot 7 freed")
        second = slots.create(issue=62, slot=7)["metadata"]["name"]
        env = wait_until(lambda: slots.slot_of(second) == 7 and custom.get_cluster_custom_object(
            GROUP, VERSION, "chatenvironments", "slot-7"), 60, "slot 7 taken again")
        c = wait_until(lambda: condition(custom.get_cluster_custom_object(
            GROUP, VERSION, "chatenvironments", "slot-7"), "Ready"), 30, "a Ready condition")
        assert c["reason"] == "NamespaceTerminating", c
        time.sleep(3)
        c = condition(custom.get_cluster_custom_object(GROUP, VERSION, "chatenvironments",
                                                       "slot-7"), "Ready")
        assert c is not None
        assert c["reason"] == "NamespaceTerminating", c
        mirrored = condition(slots.get(second), "Ready")
        assert mirrored is not None
        assert mirrored["reason"] == "NamespaceTerminating"
    finally:
        core.patch_namespace(namespace, {"metadata": {"finalizers": None}})
    wait_until(lambda: slot_ready(slots, second), 120, "the second occupant Ready", interval=1)
    warnings = [e for e in events(kubectl, "slot-7", "NamespaceConflict")
                if e["involvedObject"]["uid"] == env["metadata"]["uid"]]
    assert warnings == []


def test_status_shows_the_images_that_run(kubectl: Kubectl, custom: client.CustomObjectsApi
                                          ) -> None:
    name = f"t-images-{int(time.time() * 1000) % 100000}"
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ChatEnvironment",
            "metadata": {"name": name},
            "spec": {"stage": "dev", "namespace": f"{name}-ns",
                     "chat": {"image": "registry.example.com/chatenv/chat:1"},
                     "redis": {"image": "redis:7.4.1-alpine"}}}
    custom.create_cluster_custom_object(GROUP, VERSION, "chatenvironments", body)
    try:
        kubectl("wait", "--for=condition=Ready", f"chatenv/{name}", "--timeout=90s")
        images = custom.get_cluster_custom_object(GROUP, VERSION, "chatenvironments",
                                                  name)["status"]["images"]
        assert images == {"chat": "registry.example.com/chatenv/chat:1",
                          "redis": "redis:7.4.1-alpine", "postgres": "postgres:16.4-alpine",
                          "jaeger": "jaegertracing/jaeger:2.1.0"}
        custom.patch_cluster_custom_object(GROUP, VERSION, "chatenvironments", name, {
            "spec": {"chat": {"image": "registry.example.com/chatenv/chat:2"}}})
        wait_until(lambda: custom.get_cluster_custom_object(
            GROUP, VERSION, "chatenvironments", name)["status"]["images"]["chat"].endswith(
            ":2"), 60, "the new image in status.images")
        printed = kubectl("get", "chatenv", name, "-o", "wide").stdout
        assert "registry.example.com/chatenv/chat:2" in printed
    finally:
        custom.delete_cluster_custom_object(GROUP, VERSION, "chatenvironments", name)


def test_metrics_follow_the_pool_and_forget_deleted_objects(
        slots: Slots, operator: OperatorProcess, custom: client.CustomObjectsApi) -> None:
    names = [slots.create(issue=i)["metadata"]["name"] for i in (71, 72)]
    wait_until(lambda: all(slot_ready(slots, n) for n in names), 90, "two slots Ready")

    def used() -> int:
        envs = custom.list_cluster_custom_object(GROUP, VERSION, "chatenvironments")["items"]
        return sum(1 for e in envs if e["spec"].get("stage") == "ai")

    m = wait_until(lambda: (lambda m: m.get('chatenv_pool_slots{state="used"}') == used()
                            and m)(operator.metrics()), 20, "the pool gauge to match")
    assert m['chatenv_pool_slots{state="free"}'] == m["chatenv_pool_max_slots"] - used()
    assert m['chatenv_devslots{phase="Ready"}'] >= 2
    env = (slots.get(names[1]) or {})["status"]["environment"]
    assert m[f'chatenv_environment_phase{{environment="{env}",phase="Ready"}}'] == 1
    assert any(k.startswith("chatenv_reconcile_duration_seconds_bucket{") for k in m)
    assert any(k.startswith('chatenv_api_requests_total{code="200"') for k in m)
    assert "process_resident_memory_bytes" in m
    series = f'chatenv_object_reconciles_total{{controller="devslot",name="{names[0]}"}}'
    assert m[series] >= 1
    slots.delete(names[0])
    wait_until(lambda: series not in operator.metrics(), 60,
               "the deleted DevSlot's series to go")
    time.sleep(5)  # its children's deletion events come later: they must not bring it back
    assert series not in operator.metrics()


def test_log_lines_are_structured(operator: OperatorProcess) -> None:
    entries = [json.loads(line) for line in operator.log_lines() if line.startswith("{")]
    assert entries
    levels = {e["level"] for e in entries}
    assert levels <= {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}, levels
    about = [e for e in entries if e.get("controller") == "chatenvironment"]
    assert about
    assert all(e["kind"] == "ChatEnvironment" and e["name"] for e in about)
    assert any(e["message"].startswith("new environment: namespace ") for e in about)
