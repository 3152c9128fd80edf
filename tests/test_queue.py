"""Queuing a task by name: the dotted path names the task object itself."""

from __future__ import annotations

import pytest

from quicksend import queue


def test_a_task_named_by_its_path_is_the_registered_task():
    from campaigns import tasks

    assert queue.task("campaigns.tasks.advance_enrollment") is tasks.advance_enrollment


def test_an_unknown_name_fails_loudly():
    with pytest.raises((ModuleNotFoundError, AttributeError)):
        queue.task("campaigns.tasks.no_such_task")


class FakeClock:
    """``time.monotonic`` and ``time.sleep`` of ``quicksend.queue``: sleeping moves the clock."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(queue.time, "monotonic", fake.monotonic)
    monkeypatch.setattr(queue.time, "sleep", fake.sleep)
    monkeypatch.setattr(queue, "_last_starts", {})
    return fake


def test_a_lone_drain_starts_at_once_and_one_right_after_it_waits_for_its_turn(clock):
    queue.pace("filing", 0.1)
    assert clock.slept == []
    clock.now += 0.03
    queue.pace("filing", 0.1)
    assert clock.slept == [0.07]  # 0.1 s after the first one started
    clock.now += 0.5  # a quiet moment: the next one starts at once again
    queue.pace("filing", 0.1)
    assert clock.slept == [0.07]


def test_drains_of_different_kinds_do_not_wait_for_each_other(clock):
    queue.pace("filing", 0.1)
    queue.pace("status", 0.1)
    assert clock.slept == []


def test_drains_waiting_together_take_consecutive_turns(clock, monkeypatch):
    # Four drains asking at the same moment: each one's sleep has not ended when the next one asks.
    monkeypatch.setattr(queue.time, "sleep", lambda seconds: clock.slept.append(round(seconds, 6)))
    for _ in range(4):
        queue.pace("filing", 0.1)
    assert clock.slept == [0.1, 0.2, 0.3]
