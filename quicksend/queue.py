"""Queue a Celery task by its name.

A service that starts work in a worker queues it by name, so the service module and the task module that
calls it back do not import each other (no import cycles inside an app). The name is the task's dotted path
(``@shared_task`` without ``name=``); the module is imported here, under Python's import lock, so a web
process queues correctly from its first requests on, whatever its threads do at the same time. The task
object is the registered one: ``task_always_eager`` (embedded mode) and tests that replace a task's ``delay``
behave as with a direct call.

Batch tasks take a list of items (``task(items)``). ``enqueue_item(name, item)`` queues ``task([item])``, or,
inside a ``coalesce()`` block (a batch of inbound texts announcing itself), gathers the items and queues one
``task(items)`` per task when the block ends: one Celery message per batch instead of one per text.
"""

from __future__ import annotations

import importlib
import threading
from contextlib import contextmanager


def task(task_name: str):
    """The task whose dotted path is ``task_name``."""
    module, _, name = task_name.rpartition(".")
    return getattr(importlib.import_module(module), name)


def enqueue(task_name: str, *args, **kwargs):
    """``delay`` the task whose dotted path is ``task_name``."""
    return task(task_name).delay(*args, **kwargs)


_coalescing = threading.local()


@contextmanager
def coalesce():
    """Gather the ``enqueue_item`` calls made inside the block; queue one task per batch task at its end (in
    the order the tasks were first named). Nested blocks join the outermost one."""
    if getattr(_coalescing, "items", None) is not None:
        yield
        return
    _coalescing.items = items = {}
    try:
        yield
    finally:
        _coalescing.items = None
        for task_name, values in items.items():
            enqueue(task_name, values)


def enqueue_item(task_name: str, item) -> None:
    """Queue the batch task ``task_name`` with ``[item]`` now, or add ``item`` to the surrounding
    ``coalesce()`` block's single call."""
    items = getattr(_coalescing, "items", None)
    if items is None:
        enqueue(task_name, [item])
        return
    items.setdefault(task_name, []).append(item)
