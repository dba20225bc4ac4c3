"""The ChatEnvironment pass against an in-memory API, through its state transitions.

Each test asserts on exactly the requests a pass sent (``fakeapi.FakeApi.requests``):
what it creates, what a settled environment costs (nothing), what drift, suspension,
a namespace conflict or an invalid spec make it send. The integration tier proves the
same on the real API server.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fakeapi import FakeApi

from chatenv_operator.conditions import get_condition
from chatenv_operator.config import load_config
from chatenv_operator.kinds import CHATENV, CONFIGMAP, DEPLOYMENT, INGRESS, NAMESPACE, SECRET
from chatenv_operator.kube import ApiError
from chatenv_operator.passes import Memo, Pass, Result
from chatenv_operator.reconcile import ROUTES_SETTLE, reconcile_environment

ROOT = Path(__file__).resolve().parents[2]
CONFIG = load_config(ROOT / "services.yaml")
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
NS = "dev-ns"

HELD = "Secret/dev.dev-uid"  # the operator's copies: <environment>.<its uid>.<secret>
CREATION = [
    ("APPLY", "Namespace/dev-ns"),
    # Each generated Secret: no copy held yet, none in the namespace, so the copy first.
    ("GET", f"{HELD}.postgres-credentials"), ("CREATE?", "Secret/postgres-credentials"),
    ("CREATE", f"{HELD}.postgres-credentials"), ("CREATE", "Secret/postgres-credentials"),
    ("GET", f"{HELD}.redis-credentials"), ("CREATE?", "Secret/redis-credentials"),
    ("CREATE", f"{HELD}.redis-credentials"), ("CREATE", "Secret/redis-credentials"),
    ("APPLY", "ConfigMap/chat-config"),
    ("APPLY", "Service/postgres"), ("APPLY", "Service/postgres-rw"),
    ("APPLY", "StatefulSet/postgres"),
    ("APPLY", "Service/redis"), ("APPLY", "PersistentVolumeClaim/redis-data"),
    ("APPLY", "Deployment/redis"),
    ("APPLY", "ConfigMap/jaeger-config"), ("APPLY", "Service/jaeger"),
    ("APPLY", "Deployment/jaeger"),
    ("APPLY", "Deployment/chat"), ("APPLY", "Service/chat"),
    ("APPLY", "Ingress/chat"), ("APPLY", "Service/waker"),
    ("APPLY", "NetworkPolicy/chat-ingress-only"), ("APPLY", "NetworkPolicy/chat-egress"),
    ("APPLY", "NetworkPolicy/agent-egress"), ("APPLY", "ResourceQuota/chat-quota"),
    ("APPLY", "LimitRange/chat-limits"),
]


class World:
    """One operator process (its memo) against one in-memory API."""

    def __init__(self) -> None:
        self.api = FakeApi()
        self.memo = Memo()
        self.now = T0
        self.asked: list[str] = []
        self.last_request: datetime | None = None
        """What the chat service answers to /activity (unknown when it raises)."""
        self.password: Callable[[], str] = lambda: "generated"

    def activity(self, namespace: str) -> datetime | None:
        self.asked.append(namespace)
        return self.last_request

    def create(self, name: str = "dev", **spec: Any) -> None:
        self.api.put({"apiVersion": "chatenv.dev/v1alpha1", "kind": "ChatEnvironment",
                      "metadata": {"name": name, "uid": f"{name}-uid"},
                      "spec": {"stage": "dev", "namespace": f"{name}-ns", **spec}})

    def change(self, name: str = "dev", **spec: Any) -> None:
        self.api.edit(CHATENV, name, None, {"spec": spec})

    def run(self, name: str = "dev") -> Result:
        """One pass, as the controller runs it; the requests it sent are in ``sent``."""
        self.api.requests.clear()
        body = self.api.cache.get(CHATENV, name)
        assert body is not None
        p = Pass(self.api, self.api.cache, self.memo, now=self.now)
        return reconcile_environment(p, body, CONFIG, operator_namespace="chatenv-system",
                                     password=self.password, activity=self.activity)

    @property
    def sent(self) -> list[tuple[str, str]]:
        return self.api.requests

    def status(self, name: str = "dev") -> dict[str, Any]:
        return dict((self.api.find(CHATENV, name) or {}).get("status") or {})

    def ready(self, name: str = "dev") -> tuple[str, str]:
        c = get_condition(self.status(name), "Ready")
        assert c is not None
        return c["status"], c["reason"]

    def settle(self, name: str = "dev") -> None:
        """Run passes while the workloads roll out, until the environment is Ready."""
        for _ in range(4):
            self.api.settle_workloads()
            self.run(name)
            self.now += timedelta(seconds=ROUTES_SETTLE)  # the ingress controller loads routes
        assert self.ready(name) == ("True", "Ready")


def _backend(world: World) -> str:
    """The Service the environment's Ingress sends ``/`` to."""
    found = world.api.find(INGRESS, "chat", NS)
    assert found is not None
    return str(found["spec"]["rules"][0]["http"]["paths"][-1]["backend"]["service"]["name"])


@pytest.fixture
def world() -> World:
    return World()


def test_creation_applies_every_object_once_and_every_pod_starts_at_once(
        world: World) -> None:
    world.create()
    result = world.run()
    assert world.sent == [*CREATION, ("PATCH/status", "ChatEnvironment/dev"),
                          ("EVENT", "Applied")]
    chat = world.api.find(DEPLOYMENT, "chat", NS)
    assert chat is not None
    # No gate: the chat pods start beside their data services (migrate waits for PostgreSQL).
    assert chat["spec"]["replicas"] == 2
    assert "paused" not in chat["spec"]
    assert world.ready() == ("False", "WaitingPostgres")
    assert result.requeue_after == 5.0

    world.run()
    assert world.sent == []  # nothing changed: not one request, reads included

    # Until a chat pod serves, the host answers from the waker ("starting"); once one does,
    # the Ingress sends it to the chat pods.
    assert _backend(world) == "waker"
    world.api.settle_workloads()
    result = world.run()
    assert world.sent == [("APPLY", "Ingress/chat"), ("PATCH/status", "ChatEnvironment/dev"),
                          ("EVENT", "Applied")]
    assert _backend(world) == "chat"
    # Ready once the ingress controller has had the time to load the new routes.
    assert world.ready() == ("False", "WaitingIngress")
    assert result.requeue_after == ROUTES_SETTLE
    world.now += timedelta(seconds=ROUTES_SETTLE)
    result = world.run()
    assert world.sent == [("PATCH/status", "ChatEnvironment/dev"), ("EVENT", "Ready")]
    assert world.ready() == ("True", "Ready")
    assert result.requeue_after is None
    status = world.status()
    assert status["phase"] == "Ready"
    assert status["url"] == "https://dev.chat.example.com"
    assert status["images"]["chat"] == CONFIG.images.chat

    world.run()
    assert world.sent == []


def test_drift_is_repaired_object_by_object(world: World) -> None:
    world.create()
    world.settle()
    world.api.edit(CONFIGMAP, "chat-config", NS, {"data": {"POSTGRES_HOST": "evil"}})
    world.api.remove(DEPLOYMENT, "redis", NS)
    world.run()  # a resync, or the watch events of the two changes
    assert world.sent == [("APPLY", "ConfigMap/chat-config"), ("APPLY", "Deployment/redis"),
                          ("PATCH/status", "ChatEnvironment/dev"), ("EVENT", "Applied")]
    assert world.api.find(CONFIGMAP, "chat-config", NS)["data"][  # type: ignore[index]
        "POSTGRES_HOST"] == "postgres-rw"
    assert world.ready() == ("False", "WaitingRedis")
    # The chat service runs already: it is kept running while Redis comes back.
    assert world.api.find(DEPLOYMENT, "chat", NS)["spec"]["replicas"] == 2  # type: ignore[index]


def test_a_new_process_checks_its_secrets_once_and_keeps_their_passwords(world: World) -> None:
    world.create()
    world.settle()
    password = world.api.find(SECRET, "postgres-credentials", NS)["stringData"]  # type: ignore[index]
    world.memo = Memo()  # the operator restarted
    world.run()
    assert world.sent == [  # both copies are there, both Secrets answer 409
        ("GET", f"{HELD}.postgres-credentials"), ("CREATE", "Secret/postgres-credentials"),
        ("GET", f"{HELD}.redis-credentials"), ("CREATE", "Secret/redis-credentials")]
    assert world.api.find(SECRET, "postgres-credentials", NS)["stringData"] == password  # type: ignore[index]
    world.run()
    assert world.sent == []


def test_suspend_scales_every_workload_to_zero_and_resume_starts_them_again(
        world: World) -> None:
    world.create()
    world.settle()
    world.change(suspended=True)
    world.run()
    # The workloads to zero, and the host to the waker.
    assert sorted(r for r in world.sent if r[0] == "APPLY") == [
        ("APPLY", "Deployment/chat"), ("APPLY", "Deployment/jaeger"),
        ("APPLY", "Deployment/redis"), ("APPLY", "Ingress/chat"),
        ("APPLY", "StatefulSet/postgres")]
    for name in ("chat", "redis", "jaeger"):
        assert world.api.find(DEPLOYMENT, name, NS)["spec"]["replicas"] == 0  # type: ignore[index]
    world.api.settle_workloads()
    world.run()
    assert world.ready() == ("False", "Suspended")
    assert world.status()["phase"] == "Suspended"

    world.change(suspended=False)
    world.run()
    assert world.api.find(DEPLOYMENT, "chat", NS)["spec"]["replicas"] == 2  # type: ignore[index]
    assert world.api.find(DEPLOYMENT, "redis", NS)["spec"]["replicas"] == 1  # type: ignore[index]
    world.settle()


def test_jaeger_turned_off_is_pruned_by_its_label(world: World) -> None:
    world.create()
    world.settle()
    world.change(jaeger={"enabled": False})
    world.run()
    deleted = sorted(r for r in world.sent if r[0] == "DELETE")
    assert deleted == [("DELETE", "ConfigMap/jaeger-config"), ("DELETE", "Deployment/jaeger"),
                       ("DELETE", "Service/jaeger")]
    assert world.api.find(DEPLOYMENT, "jaeger", NS) is None
    config = world.api.find(CONFIGMAP, "chat-config", NS)
    assert config is not None
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in config["data"]
    assert world.status()["components"]["jaeger"] == {"ready": True, "message": "disabled"}


def test_a_namespace_of_someone_else_is_reported_not_taken(world: World) -> None:
    world.api.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    world.create()
    result = world.run()
    assert world.sent == [("PATCH/status", "ChatEnvironment/dev"),
                          ("EVENT", "NamespaceConflict")]
    assert world.ready() == ("False", "NamespaceConflict")
    assert "something other than chatenv" in get_condition(world.status(), "Ready")[  # type: ignore[index]
        "message"]
    assert result.requeue_after == 30.0
    assert not world.api.find(NAMESPACE, NS)["metadata"].get("ownerReferences")  # type: ignore[index]
    world.run()
    assert world.sent == []


def test_a_namespace_still_terminating_is_waited_for(world: World) -> None:
    world.api.put({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": NS, "deletionTimestamp": "2026-11-26T11:59:00Z",
                                "labels": {"chatenv.dev/environment": "dev"}}})
    world.create()
    result = world.run()
    assert world.sent == [("PATCH/status", "ChatEnvironment/dev"),
                          ("EVENT", "NamespaceTerminating")]
    assert world.ready() == ("False", "NamespaceTerminating")
    assert result.requeue_after == 2.0
    world.api.remove(NAMESPACE, NS)
    world.run()
    assert world.sent[0] == ("APPLY", "Namespace/dev-ns")


def test_an_invalid_spec_is_reported_once_and_not_retried(world: World) -> None:
    world.create(namespace="kube-system")
    result = world.run()
    assert world.sent == [("PATCH/status", "ChatEnvironment/dev"), ("EVENT", "InvalidSpec")]
    assert world.ready() == ("False", "InvalidSpec")
    assert get_condition(world.status(), "Degraded")["status"] == "True"  # type: ignore[index]
    assert result.requeue_after is None
    world.run()
    assert world.sent == []


def test_an_object_the_api_refuses_fails_the_pass_and_says_why(world: World) -> None:
    world.create()
    world.api.refuse[("APPLY", "Ingress/chat")] = ApiError(422, "Invalid", "spec.rules: bad")
    with pytest.raises(ApiError):
        world.run()
    assert world.ready() == ("False", "ApplyFailed")
    assert ("EVENT", "ApplyFailed") in world.sent
    world.api.refuse.clear()
    world.run()
    assert world.sent[0] == ("APPLY", "Ingress/chat")


def test_progress_notes_alone_are_not_worth_a_status_write(world: World) -> None:
    world.create()
    world.run()
    # A rollout step that changes a component's message but no readiness, no reason.
    world.api.edit(DEPLOYMENT, "redis", NS, {"status": {
        "observedGeneration": 1, "replicas": 1, "updatedReplicas": 1}}, spec=False)
    world.run()
    assert world.sent == []
    assert world.status()["components"]["redis"]["message"] != "0/1 available"
