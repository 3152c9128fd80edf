"""Celery tasks: receiving."""
