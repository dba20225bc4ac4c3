"""Pure logic of DevSlots: claims, queue order, expiry, the sweep's fail-safety."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chatenv_operator import pool, slots, sweep
from chatenv_operator.builders import slots as b
from chatenv_operator.config import load_config
from chatenv_operator.kube import ApiError

ROOT = Path(__file__).resolve().parents[2]
CONFIG = load_config(ROOT / "services.yaml")
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def devslot(name: str = "d", uid: str = "u1", created: str = "2026-11-26T12:00:00Z",
            **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "chatenv.dev/v1alpha1", "kind": "DevSlot",
            "metadata": {"name": name, "uid": uid, "creationTimestamp": created,
                         "generation": 1},
            "spec": {"repository": "acme/chat", "issue": 7, **spec}}


def test_slot_environment_is_owned_and_named_after_the_number() -> None:
    env = b.slot_environment(devslot(images={"chat": "x/chat:pr-9"}), 4)
    assert env["metadata"]["name"] == "slot-4"
    assert env["spec"] == {"stage": "ai", "slot": 4, "chat": {"image": "x/chat:pr-9"}}
    owner = env["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("DevSlot", "u1", True)
    assert env["metadata"]["labels"]["chatenv.dev/repository"] == "acme.chat"


def test_taken_slots_reads_owners_from_environments() -> None:
    owned = b.slot_environment(devslot(uid="a"), 2)
    hand_made = {"metadata": {"name": "mine"}, "spec": {"stage": "ai", "slot": 5}}
    other_stage = {"metadata": {"name": "dev"}, "spec": {"stage": "dev"}}
    assert pool.taken_slots([owned, hand_made, other_stage]) == {2: "a", 5: None}


def test_queue_order_is_creation_then_first_sight() -> None:
    a = devslot("a", "ua", "2026-11-26T12:00:01Z")
    b_ = devslot("b", "ub", "2026-11-26T12:00:00Z")
    c = devslot("c", "uc", "2026-11-26T12:00:01Z")
    seen = {"ua": T0 + timedelta(seconds=2), "uc": T0 + timedelta(seconds=1)}
    ordered = sorted([a, b_, c], key=lambda d: pool.queue_order(d, seen))
    assert [d["metadata"]["name"] for d in ordered] == ["b", "c", "a"]


def test_expiry_counts_from_the_last_touch() -> None:
    d = devslot(ttl="2h")
    assert slots.expires_at(d, CONFIG) == T0 + timedelta(hours=2)
    d["metadata"]["annotations"] = {"chatenv.dev/refreshed-at": "2026-11-26T13:00:00Z"}
    assert slots.expires_at(d, CONFIG) == T0 + timedelta(hours=3)
    assert slots.expires_at(devslot(), CONFIG) == T0 + timedelta(hours=24)  # services.yaml


class StubKube:
    """Answers reads from a table; records deletions. For the sweep's pure decision logic."""

    def __init__(self, lists: dict[str, list[dict[str, Any]]],
                 owners: dict[str, dict[str, Any] | Exception | None]) -> None:
        self.lists = lists
        self.owners = owners
        self.deleted: list[str] = []

    def list(self, kind: Any, namespace: str | None = None, *,
             label_selector: str | None = None) -> list[dict[str, Any]]:
        return self.lists.get(kind.kind, [])

    def get(self, kind: Any, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        answer = self.owners[name]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def delete(self, kind: Any, name: str, namespace: str | None = None, **_: Any) -> bool:
        self.deleted.append(name)
        return True


def managed_namespace(name: str, owner: str, owner_uid: str | None,
                      created: datetime) -> dict[str, Any]:
    refs = [{"apiVersion": "chatenv.dev/v1alpha1", "kind": "ChatEnvironment", "name": owner,
             "uid": owner_uid}] if owner_uid else []
    return {"metadata": {"name": name, "uid": f"ns-{name}",
                         "creationTimestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "labels": {"app.kubernetes.io/managed-by": "chatenv-operator",
                                    "chatenv.dev/environment": owner},
                         "ownerReferences": refs}}


def test_sweep_deletes_only_on_a_clear_404_after_the_grace_period() -> None:
    old = T0 - timedelta(minutes=5)
    namespaces = [
        managed_namespace("gone", "e1", "x1", old),             # owner 404: orphan
        managed_namespace("replaced", "e2", "old-uid", old),    # same name, new uid: orphan
        managed_namespace("alive", "e3", "x3", old),            # owner exists
        managed_namespace("error", "e4", "x4", old),            # owner read fails: keep
        managed_namespace("young", "e5", "x5", T0 - timedelta(seconds=5)),  # in grace: keep
        managed_namespace("ownerless", "e6", None, old),        # labels alone: keep
    ]
    kube = StubKube({"Namespace": namespaces}, {
        "e1": None,
        "e2": {"metadata": {"uid": "new-uid"}},
        "e3": {"metadata": {"uid": "x3"}},
        "e4": ApiError(503, "ServiceUnavailable", "etcd is sad"),
        "e5": None,
        "e6": None,
    })
    with pytest.raises(ApiError):  # an error stops the sweep; nothing after it is judged
        sweep.sweep(kube, now=T0)  # type: ignore[arg-type]
    assert "error" not in kube.deleted
    assert "alive" not in kube.deleted
    kube.owners["e4"] = {"metadata": {"uid": "x4"}}
    kube.deleted.clear()
    sweep.sweep(kube, now=T0)  # type: ignore[arg-type]
    assert sorted(kube.deleted) == ["gone", "replaced"]


def test_sweep_of_an_empty_cluster_deletes_nothing() -> None:
    kube = StubKube({}, {})
    assert sweep.sweep(kube, now=T0) == []  # type: ignore[arg-type]
    assert kube.deleted == []


def slot_environment(name: str, label: str, ref: tuple[str, str] | None) -> dict[str, Any]:
    refs = [{"apiVersion": "chatenv.dev/v1alpha1", "kind": "DevSlot", "name": ref[0],
             "uid": ref[1]}] if ref else []
    return {"metadata": {"name": name, "uid": f"env-{name}",
                         "creationTimestamp": "2026-11-26T11:00:00Z",
                         "labels": {"chatenv.dev/devslot": label}, "ownerReferences": refs}}


def test_sweep_needs_an_owner_reference_not_just_a_label() -> None:
    """A label is easy to put on anything: an environment labelled as a slot's, or a
    namespace labelled as managed, is never deleted without an ownerReference to a gone
    owner; and the owner is looked up by the reference, not by the label."""
    kube = StubKube({"ChatEnvironment": [
        slot_environment("hand-made", "no-such-devslot", None),          # label only: keep
        slot_environment("relabelled", "no-such-devslot", ("d1", "u1")),  # owner lives: keep
        slot_environment("orphan", "d2", ("d2", "u2")),                   # owner 404: delete
    ], "Namespace": [managed_namespace("labelled", "no-such-env", None,
                                       T0 - timedelta(hours=1))]},
        {"no-such-devslot": None, "no-such-env": None, "d1": {"metadata": {"uid": "u1"}},
         "d2": None})
    assert sweep.sweep(kube, now=T0) == ["ChatEnvironment/orphan"]  # type: ignore[arg-type]
    assert kube.deleted == ["orphan"]
