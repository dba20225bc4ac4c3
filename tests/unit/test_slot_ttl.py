"""A DevSlot cannot be made immortal: a TTL above slots.maxTTL, a `chatenv.dev/refreshed-at`
in the future or one that is not a time. Against the in-memory API, with the same passes
the operator runs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from test_slot_passes import T0, Slots

from chatenv_operator.kinds import CHATENV, DEVSLOT

WEEK = timedelta(hours=168)  # slots.maxTTL of services.yaml


def test_a_ttl_above_the_maximum_gets_no_slot_and_still_expires() -> None:
    s = Slots()
    s.create("greedy", ttl="720h")
    s.pool()
    assert not [r for r in s.api.requests if r == ("CREATE", "ChatEnvironment/slot-1")]
    assert s.api.all(CHATENV) == []  # never allocated: the pool skips an invalid DevSlot
    s.slot("greedy")
    assert s.ready("greedy") == ("False", "InvalidSpec")
    assert s.status("greedy")["expiresAt"] == "2026-12-03T12:00:00Z"  # clamped to maxTTL
    s.now = T0 + WEEK
    s.slot("greedy")
    assert s.api.find(DEVSLOT, "greedy") is None  # deleted after maxTTL, not never


def test_a_touch_in_the_future_is_ignored_with_one_event() -> None:
    s = Slots()
    s.create("d", ttl="1h")
    s.api.edit(DEVSLOT, "d", None, {"metadata": {"annotations": {
        "chatenv.dev/refreshed-at": "2099-01-01T00:00:00Z"}}}, spec=False)
    s.pool()
    s.slot("d")
    assert ("EVENT", "TouchIgnored") in s.api.requests
    assert s.status("d")["expiresAt"] == "2026-11-26T13:00:00Z"  # from the creation
    assert s.status("d")["lastActivity"] == "2026-11-26T12:00:00Z"
    s.slot("d")
    assert ("EVENT", "TouchIgnored") not in s.api.requests  # said once
    s.now = T0 + timedelta(hours=1)
    s.slot("d")
    assert s.api.find(DEVSLOT, "d") is None


def test_a_touch_that_is_not_a_time_neither_breaks_the_pass_nor_shortens_the_slot() -> None:
    s = Slots()
    s.create("d", ttl="2h")
    s.pool()
    s.now = T0 + timedelta(minutes=90)
    s.api.edit(DEVSLOT, "d", None, {"metadata": {"annotations": {
        "chatenv.dev/refreshed-at": "2026-11-26T13:00:00Z"}}}, spec=False)  # a real touch
    s.slot("d")
    assert s.status("d")["expiresAt"] == "2026-11-26T15:00:00Z"
    s.api.edit(DEVSLOT, "d", None, {"metadata": {"annotations": {
        "chatenv.dev/refreshed-at": "yesterday-ish"}}}, spec=False)
    s.slot("d")  # no exception: the value is ignored
    assert ("EVENT", "TouchIgnored") in s.api.requests
    # The last activity the status recorded stands: the slot neither expires early nor late.
    assert s.status("d")["expiresAt"] == "2026-11-26T15:00:00Z"
    s.pool()  # the pool's queue pass reads the same annotation without failing


@pytest.mark.parametrize("value", ["2026-11-26T12:00:30Z", "2026-11-26T12:00:30+00:00"])
def test_a_touch_slightly_ahead_of_the_operators_clock_counts(value: str) -> None:
    s = Slots()
    s.create("d", ttl="1h")
    s.api.edit(DEVSLOT, "d", None, {"metadata": {"annotations": {
        "chatenv.dev/refreshed-at": value}}}, spec=False)
    s.pool()
    s.slot("d")
    assert ("EVENT", "TouchIgnored") not in s.api.requests
    assert s.status("d")["expiresAt"] == "2026-11-26T13:00:30Z"
