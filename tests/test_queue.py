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
