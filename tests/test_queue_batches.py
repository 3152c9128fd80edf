"""Batch tasks: ``enqueue_item`` queues one item at a time, or gathers the items of a ``coalesce()`` block
into one task per batch task; ``run_each`` does every item, retries only the failed ones, and fails when the
retries run out."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from quicksend import queue


@pytest.fixture
def queued(monkeypatch):
    calls = []
    monkeypatch.setattr(queue, "enqueue", lambda name, *args, **kwargs: calls.append((name, args)))
    return calls


def test_items_queue_one_by_one_outside_a_block_and_together_inside(queued):
    queue.enqueue_item("app.tasks.a_many", 1)
    assert queued == [("app.tasks.a_many", ([1],))]
    queued.clear()
    with queue.coalesce():
        for n in (2, 3):
            queue.enqueue_item("app.tasks.a_many", n)
            queue.enqueue_item("app.tasks.b_many", n * 10)
        with queue.coalesce():  # joins the outer block
            queue.enqueue_item("app.tasks.a_many", 4)
        assert queued == []
    assert queued == [("app.tasks.a_many", ([2, 3, 4],)), ("app.tasks.b_many", ([20, 30],))]


class Retry(Exception):
    pass


def _task(retries=0):
    calls = {}

    def retry(args, countdown):
        calls.update(args=args, countdown=countdown)
        return Retry()

    return SimpleNamespace(
        name="app.tasks.a_many", request=SimpleNamespace(retries=retries), retry=retry
    ), calls


def test_run_each_does_every_item_and_retries_only_the_failed_ones():
    task, calls = _task(retries=2)
    done = []

    def handle(n):
        if n % 2:
            raise ValueError(f"odd {n}")
        done.append(n)
        return n

    with pytest.raises(Retry):
        queue.run_each(task, [1, 2, 3, 4], handle)
    assert done == [2, 4]
    assert calls == {"args": ([1, 3],), "countdown": 4}
    task, calls = _task()
    assert queue.run_each(task, [2, 4], handle) == [2, 4] and calls == {}
