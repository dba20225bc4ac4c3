"""Starting data through the ChatEnvironment pass, against the in-memory API: fixtures
loaded by the chat pods' migrate container, and a snapshot's restore Job that the chat
service waits for — its source, its credentials, its failure and its retry."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fakeapi import FakeApi

from chatenv_operator.builders import restore
from chatenv_operator.conditions import get_condition
from chatenv_operator.config import load_config
from chatenv_operator.environment import Snapshot
from chatenv_operator.kinds import CHATENV, DEPLOYMENT, JOB, NETWORK_POLICY, POD, SECRET
from chatenv_operator.passes import Memo, Pass
from chatenv_operator.reconcile import reconcile_environment

ROOT = Path(__file__).resolve().parents[2]
CONFIG = load_config(ROOT / "services.yaml")
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
HOME = "chatenv-system"
STEP = timedelta(seconds=5)


class World:
    def __init__(self) -> None:
        self.api = FakeApi()
        self.memo = Memo()
        self.now = T0

    def create(self, name: str, stage: str = "dev", **spec: Any) -> None:
        self.api.put({"apiVersion": "chatenv.dev/v1alpha1", "kind": "ChatEnvironment",
                      "metadata": {"name": name, "uid": f"{name}-uid"},
                      "spec": {"stage": stage, "namespace": f"{name}-ns", **spec}})

    def run(self, name: str) -> None:
        self.api.requests.clear()
        body = self.api.cache.get(CHATENV, name)
        assert body is not None
        p = Pass(self.api, self.api.cache, self.memo, now=self.now)
        reconcile_environment(p, body, CONFIG, operator_namespace=HOME,
                              password=lambda: "generated", activity=lambda _: None)

    def settle(self, name: str, passes: int = 4) -> None:
        for _ in range(passes):  # each a few seconds apart (the ingress loads its routes)
            self.now += STEP
            self.api.settle_workloads()
            self.run(name)

    def status(self, name: str) -> dict[str, Any]:
        return dict((self.api.find(CHATENV, name) or {}).get("status") or {})

    def condition(self, name: str, type_: str = "Ready") -> tuple[str, str, str]:
        c = get_condition(self.status(name), type_)
        assert c is not None
        return c["status"], c["reason"], c["message"]

    def chat(self, name: str) -> dict[str, Any]:
        found = self.api.find(DEPLOYMENT, "chat", f"{name}-ns")
        assert found is not None
        return found


@pytest.fixture
def world() -> World:
    return World()


def test_fixtures_are_loaded_by_migrate_and_ready_means_loaded(world: World) -> None:
    world.create("fx", data={"mode": "fixtures"})
    world.run("fx")
    migrate = world.chat("fx")["spec"]["template"]["spec"]["initContainers"][0]
    assert migrate["command"] == ["python", "-m", "chat_service", "migrate", "--fixtures",
                                  "demo"]
    assert {"name": "DATA_PASSWORD", "valueFrom": {"secretKeyRef": {
        "name": "data-credentials", "key": "password"}}} in migrate["env"]
    # Made once, and held like every generated Secret.
    assert world.api.find(SECRET, "data-credentials", "fx-ns") is not None
    assert world.api.find(SECRET, "fx.fx-uid.data-credentials", HOME) is not None
    assert world.status("fx")["data"]["state"] == "Loading"
    world.settle("fx")
    assert world.condition("fx")[:2] == ("True", "Ready")
    assert world.status("fx")["data"] == {"mode": "fixtures", "source": "demo",
                                          "state": "Loaded", "message": "fixtures demo loaded"}


def test_an_environment_without_data_starts_empty_and_migrate_loads_nothing(
        world: World) -> None:
    world.create("plain")
    world.run("plain")
    migrate = world.chat("plain")["spec"]["template"]["spec"]["initContainers"][0]
    assert migrate["command"] == ["python", "-m", "chat_service", "migrate"]
    assert world.api.find(SECRET, "data-credentials", "plain-ns") is None
    assert world.api.find(JOB, "data-restore", "plain-ns") is None
    assert world.status("plain")["data"]["mode"] == "empty"


def _staging(world: World) -> None:
    world.create("staging", stage="ai-staging")
    world.settle("staging")
    assert world.condition("staging")[:2] == ("True", "Ready")


def test_staging_keeps_a_read_only_role_for_snapshots_and_admits_restore_jobs(
        world: World) -> None:
    _staging(world)
    migrate = world.chat("staging")["spec"]["template"]["spec"]["initContainers"][0]
    assert {"name": "SNAPSHOT_READER_PASSWORD", "valueFrom": {"secretKeyRef": {
        "name": "snapshot-reader", "key": "password"}}} in migrate["env"]
    assert world.api.find(SECRET, "staging.staging-uid.snapshot-reader", HOME) is not None
    policy = world.api.find(NETWORK_POLICY, "chat-ingress-only", "staging-ns")
    assert policy is not None
    assert {"from": [{"namespaceSelector": {"matchLabels": {
                "app.kubernetes.io/managed-by": "chatenv-operator"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "data-restore"}}}],
            "ports": [{"protocol": "TCP", "port": 5432}]} in policy["spec"]["ingress"]


def test_a_snapshot_waits_for_its_source(world: World) -> None:
    world.create("snap", data={"mode": "snapshot"})
    world.settle("snap", passes=2)
    assert world.condition("snap")[:2] == ("False", "WaitingData")
    assert "exactly one ChatEnvironment of stage ai-staging" in world.condition("snap")[2]
    assert world.status("snap")["data"]["state"] == "Pending"
    assert world.chat("snap")["spec"]["replicas"] == 0  # held: no pod on an empty database
    assert world.api.find(JOB, "data-restore", "snap-ns") is None


def _job_done(world: World, **status: Any) -> None:
    world.api.edit(JOB, "data-restore", "snap-ns", {"status": status}, spec=False)


def test_a_snapshot_is_restored_by_a_job_before_the_chat_service_starts(
        world: World) -> None:
    _staging(world)
    world.create("snap", data={"mode": "snapshot"})
    world.run("snap")
    assert world.api.find(JOB, "data-restore", "snap-ns") is None  # PostgreSQL first
    world.api.settle_workloads()
    world.run("snap")
    assert ("CREATE", "Secret/data-source") in world.api.requests
    assert ("APPLY", "Job/data-restore") in world.api.requests
    source = world.api.find(SECRET, "data-source", "snap-ns")
    assert source is not None
    decoded = {k: base64.b64decode(v).decode() for k, v in source["data"].items()}
    assert decoded == {"SNAPSHOT_HOST": "postgres-rw.staging-ns.svc", "SNAPSHOT_PORT": "5432",
                       "SNAPSHOT_DB": "chat", "SNAPSHOT_USER": "chat_snapshot",
                       "SNAPSHOT_PASSWORD": "generated", "SNAPSHOT_NAME": "staging"}
    world.settle("snap", passes=2)
    assert world.condition("snap")[:2] == ("False", "WaitingData")
    assert world.chat("snap")["spec"]["replicas"] == 0
    assert world.status("snap")["data"]["state"] == "Loading"

    _job_done(world, succeeded=1)
    world.settle("snap")
    assert world.condition("snap")[:2] == ("True", "Ready")
    assert world.chat("snap")["spec"]["replicas"] == 2
    assert world.status("snap")["data"] == {"mode": "snapshot", "source": "staging",
                                            "state": "Loaded",
                                            "message": "snapshot staging loaded"}
    world.run("snap")
    assert world.api.requests == []  # loaded: nothing read, nothing sent
    # Loaded stays loaded: the Job gone, nothing runs again.
    world.api.remove(JOB, "data-restore", "snap-ns")
    world.run("snap")
    assert world.api.find(JOB, "data-restore", "snap-ns") is None
    assert world.condition("snap")[:2] == ("True", "Ready")


def test_a_failed_restore_is_a_clear_condition_and_deleting_the_job_retries(
        world: World) -> None:
    _staging(world)
    world.create("snap", data={"mode": "snapshot"})
    world.settle("snap", passes=2)
    world.api.put({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "data-restore-x", "namespace": "snap-ns",
        "labels": {"job-name": "data-restore"}},
        "status": {"containerStatuses": [{"state": {"terminated": {"exitCode": 6, "message":
            "migrations applied: none\nchat_service: reading the source failed: "
            "permission denied for table chat_message\n"}}}]}})
    _job_done(world, failed=3, conditions=[{"type": "Failed", "status": "True",
                                            "reason": "BackoffLimitExceeded"}])
    world.run("snap")
    status, reason, message = world.condition("snap")
    assert (status, reason) == ("False", "DataRestoreFailed")
    assert message.endswith("permission denied for table chat_message")
    assert world.condition("snap", "Degraded")[:2] == ("True", "DataRestoreFailed")
    assert world.status("snap")["data"]["state"] == "Failed"
    assert world.chat("snap")["spec"]["replicas"] == 0
    world.run("snap")
    assert world.api.requests == []  # the pods' words are read once: the status keeps them

    world.api.remove(JOB, "data-restore", "snap-ns")
    world.api.remove(POD, "data-restore-x", "snap-ns")
    world.run("snap")
    assert ("APPLY", "Job/data-restore") in world.api.requests
    assert world.status("snap")["data"]["state"] == "Loading"
    _job_done(world, succeeded=1)
    world.settle("snap")
    assert world.condition("snap")[:2] == ("True", "Ready")
    assert world.condition("snap", "Degraded")[:2] == ("False", "AsExpected")


def test_the_restore_job_runs_without_a_token_and_reads_only_its_secrets() -> None:
    from test_builders import AI
    job = restore.restore_job(AI)
    pod = job["spec"]["template"]["spec"]
    assert job["spec"]["backoffLimit"] == 2
    assert pod["automountServiceAccountToken"] is False
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["command"] == ["python", "-m", "chat_service", "restore-snapshot"]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert [e["name"] for e in container["env"]] == ["POSTGRES_PASSWORD", "DATA_PASSWORD"]
    assert container["envFrom"][1] == {"secretRef": {"name": "data-source"}}
    secret = restore.data_source_secret(AI, Snapshot("staging", "staging-ns", "pw"))
    assert sorted(secret["data"]) == ["SNAPSHOT_DB", "SNAPSHOT_HOST", "SNAPSHOT_NAME",
                                      "SNAPSHOT_PASSWORD", "SNAPSHOT_PORT", "SNAPSHOT_USER"]


def test_a_devslot_carries_its_data_onto_its_environment_and_mirrors_its_state() -> None:
    from test_slot_passes import Slots

    s = Slots()
    s.create("fx", data="fixtures")
    s.create("plain", created="2026-11-26T12:00:01Z")
    s.pool()
    envs = {e["metadata"]["labels"]["chatenv.dev/devslot"]: e for e in s.api.all(CHATENV)}
    assert envs["fx"]["spec"]["data"] == {"mode": "fixtures"}
    assert envs["plain"]["spec"]["data"] == {"mode": CONFIG.slots.data}  # slots.data
    name = envs["fx"]["metadata"]["name"]
    s.slot("fx")
    s.environment(name)
    s.slot("fx")
    assert s.status("fx")["data"]["state"] == "Loading"
    for _ in range(3):
        s.now += STEP
        s.api.settle_workloads()
        s.environment(name)
    s.slot("fx")
    assert s.ready("fx") == ("True", "Ready")
    assert s.status("fx")["data"] == {"mode": "fixtures", "source": "demo", "state": "Loaded",
                                      "message": "fixtures demo loaded"}
    s.slot("fx")
    assert s.api.requests == []


def test_the_restore_job_and_its_secret_match_their_expected_manifests() -> None:
    from test_builders import AI, golden

    assert restore.restore_job(AI) == golden("ai-restore-job")
    assert restore.data_source_secret(
        AI, Snapshot("ai-staging", "chat-ai-staging", "r3ader")) == golden(
        "ai-data-source-secret")
