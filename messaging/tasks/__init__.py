"""Celery tasks of the messaging app, one module per area; imported here so autodiscovery registers them."""

from messaging.tasks import inbox, receiving, sending  # noqa: F401
