"""Celery tasks of the messaging app; imported here so autodiscovery registers them (the inbox's tasks live
in messaging/inbox/tasks.py)."""

from messaging.inbox import tasks as inbox  # noqa: F401
from messaging.tasks import receiving, sending  # noqa: F401
