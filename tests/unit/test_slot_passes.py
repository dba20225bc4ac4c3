"""The DevSlot passes (the pool, one slot) against an in-memory API, with the same ``Pass``
as the ChatEnvironment pass: the queue, the mirror of the environment, the agent and
its secrets, the TTL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fakeapi import FakeApi
from test_environment_pass import CONFIG

from chatenv_operator.conditions import get_condition
from chatenv_operator.config import parse_config
from chatenv_operator.kinds import CHATENV, DEPLOYMENT, DEVSLOT, SECRET
from chatenv_operator.passes import Memo, Pass, Result
from chatenv_operator.pool import reconcile_pool
from chatenv_operator.reconcile import ROUTES_SETTLE, reconcile_environment
from chatenv_operator.slots import reconcile_devslot

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
OPERATOR_NS = "chatenv-system"
NS = "chat-dev-1"  # services.yaml: stages.ai.namespace


def small_pool(size: int) -> Any:
    import yaml

    doc = yaml.safe_load((ROOT / "services.yaml").read_text())
    doc["slots"]["maxSlots"] = size
    return parse_config(doc)


class Slots:
    def __init__(self, config: Any = CONFIG) -> None:
        self.api = FakeApi()
        self.memo = Memo()
        self.config = config
        self.now = T0
        self.woken: list[str] = []

    def p(self) -> Pass:
        return Pass(self.api, self.api.cache, self.memo, now=self.now)

    def create(self, name: str, created: str = "2026-11-26T12:00:00Z", **spec: Any) -> None:
        self.api.put({"apiVersion": "chatenv.dev/v1alpha1", "kind": "DevSlot",
                      "metadata": {"name": name, "creationTimestamp": created},
                      "spec": {"repository": "acme/chat", "issue": 7, **spec}})

    def pool(self) -> Any:
        self.api.requests.clear()
        seen = {d["metadata"]["uid"]: T0 for d in self.api.all(DEVSLOT)}
        return reconcile_pool(self.p(), self.config, first_seen=seen, wake=self.woken.append)

    def slot(self, name: str) -> Result:
        self.api.requests.clear()
        body = self.api.cache.get(DEVSLOT, name)
        assert body is not None
        return reconcile_devslot(self.p(), body, self.config, operator_namespace=OPERATOR_NS)

    def environment(self, name: str) -> None:
        body = self.api.cache.get(CHATENV, name)
        assert body is not None
        reconcile_environment(self.p(), body, self.config, operator_namespace=OPERATOR_NS,
                              password=lambda: "pw")

    def status(self, name: str) -> dict[str, Any]:
        return dict((self.api.find(DEVSLOT, name) or {}).get("status") or {})

    def ready(self, name: str) -> tuple[str, str]:
        c = get_condition(self.status(name), "Ready")
        assert c is not None
        return c["status"], c["reason"]


def test_the_pool_gives_numbers_in_creation_order_and_queues_the_rest() -> None:
    s = Slots(small_pool(2))
    s.create("c", "2026-11-26T12:00:02Z")
    s.create("a", "2026-11-26T12:00:00Z", slot=2)
    s.create("b", "2026-11-26T12:00:01Z")
    report = s.pool()
    assert s.api.requests == [
        ("LIST", "DevSlot/"), ("LIST", "ChatEnvironment/"),
        ("CREATE", "ChatEnvironment/slot-2"), ("EVENT", "Allocated"),  # a: its preferred number
        ("CREATE", "ChatEnvironment/slot-1"), ("EVENT", "Allocated"),
        ("PATCH/status", "DevSlot/c"), ("EVENT", "PoolExhausted"),
    ]
    assert s.woken == ["a", "b"]
    assert (report.used, report.queued) == (2, 1)
    assert s.status("c")["queuePosition"] == 1
    assert s.ready("c") == ("False", "PoolExhausted")
    s.pool()
    assert [r for r in s.api.requests if r[0] != "LIST"] == []  # still queued: nothing new

    s.api.remove(CHATENV, "slot-1")  # b's environment is gone: its number is free
    s.api.remove(DEVSLOT, "b")
    s.pool()
    assert ("CREATE", "ChatEnvironment/slot-1") in s.api.requests
    assert s.woken[-1] == "c"


def test_a_slot_mirrors_its_environment_then_is_ready_and_then_costs_nothing() -> None:
    s = Slots()
    s.create("d")
    s.pool()
    s.slot("d")
    assert s.ready("d") == ("False", "Provisioning")
    assert s.status("d")["namespace"] == NS
    s.environment("slot-1")
    s.slot("d")
    assert s.ready("d") == ("False", "WaitingPostgres")  # the environment's own reason
    for _ in range(3):
        s.api.settle_workloads()
        s.environment("slot-1")
        s.now += timedelta(seconds=ROUTES_SETTLE)  # the ingress controller loads the routes
    s.slot("d")
    assert s.api.requests == [("PATCH/status", "DevSlot/d"), ("EVENT", "Ready")]
    assert s.ready("d") == ("True", "Ready")
    assert "no agent: spec.agent is not set" in get_condition(  # type: ignore[index]
        s.status("d"), "Ready")["message"]
    s.slot("d")
    assert s.api.requests == []


def test_an_agent_waits_for_its_secret_then_gets_a_copy() -> None:
    s = Slots()
    s.create("d", agent={"image": "agent:1", "secretRefs": ["agent-credentials"]})
    s.pool()
    s.environment("slot-1")
    result = s.slot("d")
    assert s.ready("d") == ("False", "AgentSecretMissing")
    assert ("EVENT", "AgentSecretMissing") in s.api.requests
    assert result.requeue_after == 30.0
    s.slot("d")
    assert [r for r in s.api.requests if r[0] != "GET"] == []  # said once

    s.api.put({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "agent-credentials", "namespace": OPERATOR_NS},
               "data": {"TOKEN": "dG9rZW4="}})
    s.slot("d")
    copy = s.api.find(SECRET, "agent-agent-credentials", NS)
    assert copy is not None
    assert copy["data"] == {"TOKEN": "dG9rZW4="}
    assert s.api.find(DEPLOYMENT, "agent", NS) is not None
    s.slot("d")
    assert [r for r in s.api.requests if r[0] in ("GET", "CREATE", "APPLY")] == []


def test_the_ttl_warns_once_then_deletes_the_slot() -> None:
    s = Slots()
    s.create("d", ttl="1h")
    s.pool()
    s.now = T0 + timedelta(minutes=59)  # within slots.expiryWarning of the expiry
    s.slot("d")
    assert ("EVENT", "ExpiringSoon") in s.api.requests
    assert s.status("d")["expiryWarned"] is True
    s.slot("d")
    assert ("EVENT", "ExpiringSoon") not in s.api.requests
    s.now = T0 + timedelta(hours=1)
    result = s.slot("d")
    assert s.api.requests == [("EVENT", "Expired"), ("DELETE", "DevSlot/d")]
    assert s.api.find(DEVSLOT, "d") is None
    assert result.requeue_after is None


@pytest.mark.parametrize("ttl", ["999h"])
def test_a_ttl_above_the_maximum_is_an_invalid_spec_said_once(ttl: str) -> None:
    s = Slots()
    s.create("d", ttl=ttl)
    s.slot("d")
    assert s.api.requests == [("PATCH/status", "DevSlot/d"), ("EVENT", "InvalidSpec")]
    assert s.ready("d") == ("False", "InvalidSpec")
    s.slot("d")
    assert s.api.requests == []
