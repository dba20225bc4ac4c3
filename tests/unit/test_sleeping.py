"""When an environment sleeps and wakes (chatenv_operator.sleeping), on a fixed clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from chatenv_operator.sleeping import ActivityUnknown, Clocks, asleep, decide

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
AWAKE = Clocks(idle=1800, suspended=False, sleeping_since=None, wake_requested=None,
               ready_since=T0, last_request=None)


def never_asked() -> datetime | None:
    raise AssertionError("the chat service must not be asked")


def answers(value: datetime | None) -> Callable[[], datetime | None]:
    calls: list[int] = []

    def ask() -> datetime | None:
        calls.append(1)
        return value
    ask.calls = calls  # type: ignore[attr-defined]
    return ask


def test_a_fresh_environment_gets_a_whole_window_without_asking() -> None:
    verdict = decide(AWAKE, T0 + 10 * MIN, never_asked)
    assert not verdict.asleep
    assert verdict.recheck_after == 20 * 60


def test_after_the_window_it_asks_and_sleeps_when_nobody_came() -> None:
    verdict = decide(AWAKE, T0 + 31 * MIN, answers(None))
    assert verdict.asleep
    assert verdict.sleeping_since == T0 + 31 * MIN


def test_a_recent_request_keeps_it_awake_and_is_recorded() -> None:
    verdict = decide(AWAKE, T0 + 31 * MIN, answers(T0 + 25 * MIN))
    assert not verdict.asleep
    assert verdict.last_request == T0 + 25 * MIN
    assert verdict.recheck_after == 24 * 60  # 25 + 30 - 31


def test_the_recorded_request_spares_a_question() -> None:
    c = replace(AWAKE, last_request=T0 + 20 * MIN)
    assert decide(c, T0 + 40 * MIN, never_asked).recheck_after == 10 * 60


def test_unknown_is_not_idle() -> None:
    def fails() -> datetime | None:
        raise ActivityUnknown("no answer")

    verdict = decide(AWAKE, T0 + 31 * MIN, fails)
    assert not verdict.asleep
    assert verdict.recheck_after == 60


@pytest.mark.parametrize("clocks", [
    replace(AWAKE, idle=None), replace(AWAKE, suspended=True), replace(AWAKE, ready_since=None),
])
def test_never_sleeps_without_idle_when_suspended_or_not_ready(clocks: Clocks) -> None:
    verdict = decide(clocks, T0 + 10 * 60 * MIN, never_asked)
    assert not verdict.asleep
    assert verdict.recheck_after is None


def test_asleep_until_a_later_wake_request() -> None:
    sleeping = replace(AWAKE, sleeping_since=T0 + 31 * MIN)
    assert decide(sleeping, T0 + 90 * MIN, never_asked).asleep
    old_wake = replace(sleeping, wake_requested=T0 + 5 * MIN)
    assert asleep(old_wake, T0 + 90 * MIN)
    woken = replace(sleeping, wake_requested=T0 + 40 * MIN, ready_since=None)
    verdict = decide(woken, T0 + 41 * MIN, never_asked)
    assert not verdict.asleep
    assert verdict.sleeping_since is None
    # Ready again at 41: the window counts from there (later than the wake).
    ready = replace(woken, sleeping_since=None, ready_since=T0 + 41 * MIN)
    assert decide(ready, T0 + 50 * MIN, never_asked).recheck_after == 21 * 60


def test_a_person_wins_over_waking_and_sleeping() -> None:
    suspended = replace(AWAKE, sleeping_since=T0, wake_requested=T0 + MIN, suspended=True)
    verdict = decide(suspended, T0 + 2 * MIN, never_asked)
    assert not verdict.asleep
    assert verdict.sleeping_since is None  # resuming starts it awake


def test_times_from_the_future_are_not_believed() -> None:
    sleeping = replace(AWAKE, sleeping_since=T0 + 31 * MIN,
                       wake_requested=datetime(2099, 1, 1, tzinfo=UTC))
    assert asleep(sleeping, T0 + 32 * MIN)
    forged = replace(AWAKE, last_request=datetime(2099, 1, 1, tzinfo=UTC))
    assert decide(forged, T0 + 31 * MIN, answers(None)).asleep
    close = replace(sleeping, wake_requested=T0 + 32 * MIN + timedelta(seconds=30))
    assert not asleep(close, T0 + 32 * MIN)  # within the skew two clocks may have
