"""Queue a Celery task by its registered name.

A service that starts work in a worker queues it by name, so the service module and the task module that
calls it back do not import each other (no import cycles inside an app). The task object is the registered
one, so ``task_always_eager`` (embedded mode) and tests that replace a task's ``delay`` behave as with a
direct call.
"""

from __future__ import annotations

from celery import current_app
from celery.exceptions import NotRegistered


def task(task_name: str):
    """The task registered as ``task_name`` (its dotted path for ``@shared_task``). A process that has not
    imported the apps' task modules yet (a web process) imports them first, as a worker does at start."""
    try:
        return current_app.tasks[task_name]
    except NotRegistered:
        current_app.loader.import_default_modules()
        return current_app.tasks[task_name]


def enqueue(task_name: str, *args, **kwargs):
    """``delay`` the task registered as ``task_name``."""
    return task(task_name).delay(*args, **kwargs)
