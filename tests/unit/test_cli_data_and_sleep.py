"""The CLI's part in starting data and sleeping: --data on a new DevSlot, the data mode in
the JSON, `chatenv credentials`, and ensure-ready waking a sleeping slot."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from chatenv_operator import cli
from chatenv_operator.cli import actions
from chatenv_operator.cli.errors import EXIT_NOT_FOUND, EXIT_USAGE, CliError
from chatenv_operator.cli.output import Request, devslot_manifest, summary
from chatenv_operator.constants import ANNOTATION_REFRESHED_AT


def devslot(status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "chatenv.dev/v1alpha1", "kind": "DevSlot",
            "metadata": {"name": "acme-chat-issue-7", "uid": "u1", "generation": 1,
                         "creationTimestamp": "2026-11-26T12:00:00Z"},
            "spec": {"repository": "acme/chat", "issue": 7, **spec},
            "status": status or {}}


def test_data_goes_into_a_new_devslot_only_when_asked() -> None:
    assert devslot_manifest(Request("acme/chat", issue=7, data="snapshot"))["spec"]["data"] \
        == "snapshot"
    assert "data" not in devslot_manifest(Request("acme/chat", issue=7))["spec"]
    code = cli.main(["render", "--issue", "7", "--repository", "acme/chat", "--data",
                     "fixtures"])
    assert code == 0


def test_a_wrong_data_mode_exits_2() -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["ensure-slot", "--issue", "7", "--repository", "acme/chat", "--data", "x"])
    assert e.value.code == EXIT_USAGE


def test_the_json_reports_the_data_mode() -> None:
    asked = summary(devslot(data="fixtures"))
    assert asked["data"] == {"mode": "fixtures"}
    reported = summary(devslot({"data": {"mode": "snapshot", "state": "Loaded",
                                         "source": "ai-staging"}}, data="snapshot"))
    assert reported["data"] == {"mode": "snapshot", "state": "Loaded", "source": "ai-staging"}
    assert summary(devslot())["data"] == {"mode": None}


class FakeKube:
    def __init__(self, *objects: dict[str, Any]) -> None:
        self.objects = list(objects)
        self.patches: list[tuple[str, dict[str, Any]]] = []

    def list(self, kind: Any, namespace: str | None = None, **_: Any) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind.kind]

    def get(self, kind: Any, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return next((o for o in self.objects if o["kind"] == kind.kind
                     and o["metadata"]["name"] == name
                     and o["metadata"].get("namespace") == namespace), None)

    def merge_patch(self, kind: Any, name: str, patch: dict[str, Any], **_: Any
                    ) -> dict[str, Any]:
        self.patches.append((name, patch))
        obj = self.get(kind, name)
        assert obj is not None
        obj["metadata"].setdefault("annotations", {}).update(
            patch["metadata"].get("annotations", {}))
        return obj


def secret(password: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "data-credentials", "namespace": "chat-dev-3"},
            "data": {"password": base64.b64encode(password.encode()).decode()}}


def test_credentials_print_the_slots_placeholder_password() -> None:
    slot = devslot({"slot": 3, "namespace": "chat-dev-3", "url": "http://dev-3.localhost",
                    "data": {"mode": "fixtures", "state": "Loaded", "source": "demo"}},
                   data="fixtures")
    kube = FakeKube(slot, secret("s3cret-placeholder"))
    out = actions.credentials(kube, actions.Target("acme/chat", issue=7))  # type: ignore[arg-type]
    assert out["password"] == "s3cret-placeholder"
    assert out["slot"] == 3
    assert "fixtures" in out["login"]


def test_no_credentials_for_an_empty_slot_or_before_they_exist() -> None:
    empty = devslot({"slot": 3, "namespace": "chat-dev-3", "data": {"mode": "empty"}})
    with pytest.raises(CliError, match="started with an empty database") as e:
        actions.credentials(FakeKube(empty), actions.Target("acme/chat", issue=7))  # type: ignore[arg-type]
    assert e.value.code == EXIT_NOT_FOUND
    starting = devslot({"slot": 3, "namespace": "chat-dev-3"}, data="snapshot")
    with pytest.raises(CliError, match="no credentials yet"):
        actions.credentials(FakeKube(starting), actions.Target("acme/chat", issue=7))  # type: ignore[arg-type]


def test_ensure_ready_wakes_a_sleeping_slot() -> None:
    ready = {"type": "Ready", "status": "False", "reason": "Sleeping", "message": "asleep"}
    slot = devslot({"slot": 3, "namespace": "chat-dev-3", "phase": "Sleeping",
                    "observedGeneration": 1, "conditions": [ready]})
    kube = FakeKube(slot)

    def wake_up(_: float) -> None:
        # The operator's answer to the touch: awake and Ready again.
        ready.update(status="True", reason="Ready")
        slot["status"]["phase"] = "Ready"

    out, code, notes = actions.ensure_ready(
        kube, Request("acme/chat", issue=7), explicit_mode=False,  # type: ignore[arg-type]
        allocation_wait=0, timeout="30s", soft_fail=False, sleep=wake_up)
    assert code == 0
    assert out["infraReady"]
    assert [name for name, _ in kube.patches] == ["acme-chat-issue-7"]
    assert ANNOTATION_REFRESHED_AT in kube.patches[0][1]["metadata"]["annotations"]
    assert any("was asleep" in n for n in notes)
