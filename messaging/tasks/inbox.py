"""Celery tasks: inbox."""
