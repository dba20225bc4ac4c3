"""The work queue on a fake clock: exact moments of every reconcile, no wall-clock sleeps."""

from __future__ import annotations

from typing import Any

from fakeclock import FakeClock, inline, taking

from chatenv_operator.controller import Controller


class Outcome:
    def __init__(self, requeue_after: float | None = None, gone: bool = False) -> None:
        self.requeue_after = requeue_after
        self.gone = gone


class Recorder:
    """A reconcile function that records when it ran, and can fail or ask for more."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[tuple[float, str]] = []
        self.fail: set[str] = set()
        self.requeue: dict[str, float] = {}
        self.gone: set[str] = set()
        self.running: set[str] = set()
        self.overlap = False

    def __call__(self, key: str) -> Any:
        self.calls.append((self.clock.now(), key))
        if key in self.fail:
            raise RuntimeError("boom")
        return Outcome(self.requeue.pop(key, None), key in self.gone)

    def times(self, key: str) -> list[float]:
        return [t for t, k in self.calls if k == key]


def controller(clock: FakeClock, rec: Recorder, **kw: Any) -> Controller:
    return Controller("t", rec, clock=clock, run=kw.pop("run", inline), **kw)


async def test_events_while_queued_or_running_are_merged_and_a_key_never_runs_twice_at_once(
        ) -> None:
    clock = FakeClock()
    rec = Recorder(clock)
    c = controller(clock, rec, run=taking(clock, 1.0))
    c.start()
    for _ in range(10):  # ten events for each while the first passes run
        c.enqueue("a")
        c.enqueue("b")
        await clock.advance(0.05)
    await clock.advance(5)
    await c.stop()
    # Each ran at 0 (its pass taking 1 s) and once more right after, for what came meanwhile.
    assert rec.times("a") == [1.0, 2.0]
    assert rec.times("b") == [1.0, 2.0]


async def test_failures_back_off_exponentially_then_recover() -> None:
    clock = FakeClock()
    rec = Recorder(clock)
    rec.fail.add("x")
    c = controller(clock, rec, base_backoff=1.0, max_backoff=8.0)
    c.start()
    c.enqueue("x")
    await clock.advance(30)
    assert rec.times("x") == [0, 1, 3, 7, 15, 23]  # 1, 2, 4, 8, then 8 at most
    assert c.stats.failures == 6
    rec.fail.clear()
    await clock.advance(100)
    await c.stop()
    assert rec.times("x") == [0, 1, 3, 7, 15, 23, 31]  # one success: no more retries


async def test_requeue_after_runs_again_and_forget_cancels() -> None:
    clock = FakeClock()
    rec = Recorder(clock)
    rec.requeue["y"] = 2.5
    c = controller(clock, rec)
    c.start()
    c.enqueue("y")
    c.enqueue("z", delay=1.0)
    c.forget("z")
    await clock.advance(10)
    await c.stop()
    assert rec.times("y") == [0, 2.5]
    assert rec.times("z") == []


async def test_an_earlier_request_wins_over_a_later_delay() -> None:
    clock = FakeClock()
    rec = Recorder(clock)
    c = controller(clock, rec)
    c.start()
    c.enqueue("k", delay=5)
    c.enqueue("k", delay=2)  # sooner: replaces the timer
    c.enqueue("k", delay=9)  # later than pending: ignored
    await clock.advance(20)
    await c.stop()
    assert rec.times("k") == [2]


async def test_a_failing_key_waits_for_its_backoff_whatever_its_children_do() -> None:
    clock = FakeClock()
    rec = Recorder(clock)
    rec.fail.add("x")
    c = controller(clock, rec, base_backoff=5.0)
    c.start()
    c.enqueue("x")
    for _ in range(8):  # child events: status changes of its environment, say
        await clock.advance(0.25)
        c.enqueue("x", nudge=True)
    assert rec.times("x") == [0]  # "retrying in 5s" means it
    c.enqueue("x")  # a change of the object itself is worth a try at once
    await clock.advance(0)
    await c.stop()
    assert rec.times("x") == [0, 2.0]


async def test_a_deleted_object_leaves_no_statistics_behind() -> None:
    clock = FakeClock()
    rec = Recorder(clock)
    rec.gone.add("old")
    seen: list[tuple[str, str]] = []

    class Observer:
        def reconciled(self, controller: str, key: str, seconds: float, ok: bool) -> None:
            seen.append(("reconciled", key))

        def forgotten(self, controller: str, key: str) -> None:
            seen.append(("forgotten", key))

    c = controller(clock, rec, resync_interval=10, observer=Observer())
    c.start()
    c.enqueue("old")
    c.enqueue("live")
    await clock.advance(35)  # three resyncs
    await c.stop()
    assert rec.times("old") == [0]  # forgotten: the resync no longer visits it
    assert rec.times("live") == [0, 10, 20, 30]
    assert "old" not in c.stats.by_key
    assert seen[:2] == [("reconciled", "old"), ("forgotten", "old")]


async def test_workers_follow_the_queue_up_to_the_limit() -> None:
    clock = FakeClock()
    rec = Recorder(clock)
    c = controller(clock, rec, run=taking(clock, 1.0), max_workers=4)
    c.start()
    assert c.workers == 0
    for i in range(10):
        c.enqueue(f"k{i}")
    await clock.advance(0.5)
    assert c.workers == 4
    assert c.depth == 10
    await clock.advance(10)
    # Four at a time, each pass 1 s: done at 1, 2 and 3 s.
    assert sorted(t for t, _ in rec.calls) == [1.0] * 4 + [2.0] * 4 + [3.0] * 2
    assert c.workers == 0  # nothing waits: no worker either
    c.enqueue("late")
    await clock.advance(0.5)
    assert c.workers == 1
    await clock.advance(1)
    await c.stop()
    assert rec.times("late") == [11.5]  # enqueued at 10.5, a worker started for it


async def test_oldest_age_is_the_longest_wait_in_the_queue() -> None:
    clock = FakeClock()
    rec = Recorder(clock)
    c = controller(clock, rec, run=taking(clock, 1.0), max_workers=1)
    assert c.oldest_age == 0.0
    c.enqueue("a")  # not started: it waits
    await clock.advance(3)
    c.enqueue("b")
    assert c.oldest_age == 3.0
    c.start()
    await clock.advance(0.5)
    assert c.oldest_age == 0.5  # a runs; b has waited half a second
    await clock.advance(5)
    await c.wait_idle()
    await c.stop()
    assert c.oldest_age == 0.0
