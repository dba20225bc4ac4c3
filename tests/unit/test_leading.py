"""Leader election over a Lease, against the in-memory API, on a fake clock: one leader at
a time, a takeover after a holder stops renewing, at once after a release."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fakeapi import FakeApi

from chatenv_operator.kinds import LEASE
from chatenv_operator.kube import ApiError
from chatenv_operator.leading import LEASE_NAME, Elector

NS = "chatenv-system"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def monotonic(self) -> float:
        return self.t

    def wall(self) -> datetime:
        return datetime(2026, 11, 27, tzinfo=UTC) + timedelta(seconds=self.t)


def electors(api: FakeApi, clock: Clock) -> tuple[Elector, Elector]:
    return tuple(Elector(api, NS, identity=who, monotonic=clock.monotonic,  # type: ignore[return-value]
                         wall=clock.wall) for who in ("a", "b"))


def holder(api: FakeApi) -> str | None:
    lease = api.find(LEASE, LEASE_NAME, NS)
    return None if lease is None else lease["spec"].get("holderIdentity")


def test_one_leads_and_the_other_takes_over_when_it_stops_renewing() -> None:
    api, clock = FakeApi(), Clock()
    a, b = electors(api, clock)
    assert a.attempt() is True
    assert b.attempt() is False
    for _ in range(10):  # a renews every 2 s: b never gets it
        clock.t += 2
        assert a.attempt() is True
        assert b.attempt() is False
    assert holder(api) == "a"
    clock.t += 9  # a stopped (killed): b has not seen it renew for 9 s...
    assert b.attempt() is False
    clock.t += 2  # ...and now for 11 s, more than the lease's 10 s
    assert b.attempt() is True
    assert holder(api) == "b"
    assert api.find(LEASE, LEASE_NAME, NS)["spec"]["leaseTransitions"] == 1  # type: ignore[index]
    assert a.attempt() is False  # a, were it only paused, sees b and steps down at once
    assert not a.leading


def test_a_leader_that_cannot_renew_stops_before_anyone_may_take_over() -> None:
    api, clock = FakeApi(), Clock()
    a, b = electors(api, clock)
    a.attempt()
    api.refuse[("GET", f"Lease/{LEASE_NAME}")] = ApiError(0, "ConnectionError", "partitioned")
    clock.t += 6
    assert not a.lost()
    clock.t += 2  # 8 s without a renewal: more than renew_seconds (7), less than the lease
    assert a.lost()
    del api.refuse[("GET", f"Lease/{LEASE_NAME}")]
    assert b.attempt() is False  # b only now starts counting: a stopped first


def test_a_release_hands_over_at_once() -> None:
    api, clock = FakeApi(), Clock()
    a, b = electors(api, clock)
    a.attempt()
    assert b.attempt() is False
    a.release()
    assert holder(api) is None
    assert b.attempt() is True


def test_two_candidates_at_the_same_moment_get_one_leader() -> None:
    api, clock = FakeApi(), Clock()
    a, b = electors(api, clock)
    a.attempt()
    a.release()
    # Both read the free Lease, then both write: the second write is at a stale version.
    lease = api.get(LEASE, LEASE_NAME, NS)
    original_get = api.get
    api.get = lambda *args, **kw: lease  # type: ignore[method-assign, assignment]
    assert b.attempt() is True
    assert a.attempt() is False
    api.get = original_get  # type: ignore[method-assign]
    assert holder(api) == "b"
