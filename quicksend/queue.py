"""Queue a Celery task by its name.

A service that starts work in a worker queues it by name, so the service module and the task module that
calls it back do not import each other (no import cycles inside an app). The name is the task's dotted path
(``@shared_task`` without ``name=``); the module is imported here, under Python's import lock, so a web
process queues correctly from its first requests on, whatever its threads do at the same time. The task
object is the registered one: ``task_always_eager`` (embedded mode) and tests that replace a task's ``delay``
behave as with a direct call.
"""

from __future__ import annotations

import importlib


def task(task_name: str):
    """The task whose dotted path is ``task_name``."""
    module, _, name = task_name.rpartition(".")
    return getattr(importlib.import_module(module), name)


def enqueue(task_name: str, *args, **kwargs):
    """``delay`` the task whose dotted path is ``task_name``."""
    return task(task_name).delay(*args, **kwargs)
