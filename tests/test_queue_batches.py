"""Batch tasks: ``enqueue_item`` queues one item at a time, or gathers the items of a ``coalesce()`` block
into one task per batch task."""

from __future__ import annotations

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
