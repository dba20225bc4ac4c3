"""The `chatenv` CLI against the real API server, where a first user got hurt: numbers below 1,
a PR attached twice, a new image for an existing slot, a different mode, the expiry a touch
reports, a slot still queued when ensure-ready gives up."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from kubehelpers import Slots, chatenv, condition, ok_json, slot_ready, wait_until
from kubernetes import client

pytestmark = pytest.mark.usefixtures("operator")


def test_numbers_below_one_exit_2_and_touch_nothing(slots: Slots, kubeconfig: Path) -> None:
    names = [slots.create(issue=i)["metadata"]["name"] for i in (1, 2, 3)]
    wait_until(lambda: all(slots.slot_of(n) for n in names), 60, "three slots allocated")
    repo = ["--repository", slots.repository]
    for argv in (["cleanup", "--issue", "0", *repo], ["cleanup", "--pr", "-1", *repo],
                 ["ensure-slot", "--issue", "0", *repo], ["touch", "--issue", "0", *repo],
                 ["set", "--slot", str(slots.slot_of(names[0])), "--pr", "0"]):
        res = chatenv(kubeconfig, *argv)
        assert res.returncode == 2, (argv, res.stderr)
        assert "must be 1 or more" in res.stderr, res.stderr
    assert all(slots.get(n) is not None for n in names)  # the cleanup deleted nothing
    listed = ok_json(chatenv(kubeconfig, "list", "--json", *repo))
    assert sorted(d["name"] for d in listed) == sorted(names)  # and nothing was created
    assert all((slots.get(n) or {})["spec"].get("pr") is None for n in names)


def test_a_pr_belongs_to_one_slot(slots: Slots, kubeconfig: Path) -> None:
    a = slots.create(issue=11)["metadata"]["name"]
    b = slots.create(issue=12)["metadata"]["name"]
    wait_until(lambda: slots.slot_of(a) and slots.slot_of(b), 60, "both slots allocated")
    repo = ["--repository", slots.repository]
    first = ok_json(chatenv(kubeconfig, "set", "--slot", str(slots.slot_of(a)), "--pr", "70",
                            *repo))
    assert (first["name"], first["pr"]) == (a, 70)
    again = ok_json(chatenv(kubeconfig, "set", "--slot", str(slots.slot_of(a)), "--pr", "70"))
    assert again["pr"] == 70  # idempotent
    second = chatenv(kubeconfig, "set", "--slot", str(slots.slot_of(b)), "--pr", "70", *repo)
    assert second.returncode == 1
    assert f"PR 70 of {slots.repository} is already attached to {a}" in second.stderr
    assert "pr" not in (slots.get(b) or {})["spec"]
    touched = ok_json(chatenv(kubeconfig, "touch", "--pr", "70", *repo))
    assert touched["name"] == a
    other = chatenv(kubeconfig, "set", "--slot", str(slots.slot_of(a)), "--pr", "71",
                    "--repository", "someone/else")
    assert other.returncode == 3
    assert "not of someone/else" in other.stderr


def test_ensure_ready_rolls_an_existing_slot_to_a_new_chat_image(
        slots: Slots, kubeconfig: Path, apps: client.AppsV1Api) -> None:
    repo = ["--repository", slots.repository]
    first = ok_json(chatenv(kubeconfig, "ensure-ready", "--pr", "80", *repo, "--chat-image",
                            "registry.example.com/chatenv/chat:pr-80-a", "--timeout", "90s"))
    slots.names.append(first["name"])
    assert first["images"]["chat"] == "registry.example.com/chatenv/chat:pr-80-a"
    rolled = chatenv(kubeconfig, "ensure-ready", "--pr", "80", *repo, "--chat-image",
                     "registry.example.com/chatenv/chat:pr-80-b", "--timeout", "90s")
    out = ok_json(rolled)
    assert "chat image set to registry.example.com/chatenv/chat:pr-80-b" in rolled.stderr
    # Ready again only once the new image runs: the status describes the new spec.
    assert out["infraReady"] is True
    assert out["images"]["chat"] == "registry.example.com/chatenv/chat:pr-80-b"
    deployment = apps.read_namespaced_deployment("chat", out["namespace"])
    assert deployment.spec.template.spec.containers[0].image.endswith("pr-80-b")

    mode = chatenv(kubeconfig, "ensure-slot", "--pr", "80", *repo, "--mode", "plan")
    assert mode.returncode == 1
    assert "has mode dev, not plan: a DevSlot's mode cannot change" in mode.stderr
    assert (slots.get(first["name"]) or {})["spec"]["mode"] == "dev"
    same = chatenv(kubeconfig, "ensure-slot", "--pr", "80", *repo, "--ttl", "2h")
    assert ok_json(same)["name"] == first["name"]
    assert "--ttl only apply to a new DevSlot" in same.stderr


def test_touch_reports_the_new_expiry(slots: Slots, kubeconfig: Path) -> None:
    name = slots.create(issue=21)["metadata"]["name"]  # no spec.ttl: the operator's default
    wait_until(lambda: slot_ready(slots, name), 60, "the slot Ready")
    before = (slots.get(name) or {})["status"]["expiresAt"]
    time.sleep(2)  # expiry has one-second resolution: make the touch visibly later
    out = ok_json(chatenv(kubeconfig, "touch", "--issue", "21", "--repository",
                          slots.repository))
    assert out["expiresAt"] > before
    wait_until(lambda: (slots.get(name) or {})["status"]["expiresAt"] != before, 15,
               "the operator to move expiresAt")
    assert (slots.get(name) or {})["status"]["expiresAt"] == out["expiresAt"]


def test_a_queued_slot_stays_queued_when_ensure_ready_gives_up(
        slots: Slots, kubeconfig: Path) -> None:
    holders = [slots.create(issue=i)["metadata"]["name"] for i in range(31, 41)]
    wait_until(lambda: all(slots.slot_of(n) for n in holders), 90, "the pool full")
    res = chatenv(kubeconfig, "ensure-ready", "--issue", "41", "--repository",
                  slots.repository, "--timeout", "3s", "--allocation-wait", "5")
    out = ok_json(res, 7)
    slots.names.append(out["name"])
    assert (out["phase"], out["queuePosition"], out["infraReady"]) == ("Queued", 1, False)
    assert "still queued (position 1)" in res.stderr
    assert slots.get(out["name"]) is not None  # kept, with its place
    md = chatenv(kubeconfig, "comment", "--issue", "41", "--repository", slots.repository)
    assert "Queued: position 1" in md.stdout
    soft = chatenv(kubeconfig, "ensure-ready", "--issue", "41", "--repository",
                   slots.repository, "--timeout", "1s", "--soft-fail")
    assert ok_json(soft)["phase"] == "Queued"
    slots.delete(holders[0])  # a number frees up: the queued slot gets it
    wait_until(lambda: slot_ready(slots, out["name"]), 120, "the queued slot Ready",
               interval=1)
    c = condition(slots.get(out["name"]), "Ready")
    assert c is not None

