"""Markers for tests that need a production-mode component. CI runs in production mode (PostgreSQL + Redis),
so these run there; in the embedded mode they are skipped with the reason shown."""

import pytest
from django.conf import settings

needs_postgres = pytest.mark.skipif(
    "postgresql" not in settings.DATABASES["default"]["ENGINE"],
    reason="SQLite serializes writers; the race needs PostgreSQL (CI runs it)",
)
needs_shared_channel_layer = pytest.mark.skipif(
    "Redis" not in settings.CHANNEL_LAYERS["default"]["BACKEND"],
    reason="the in-memory channel layer does not cross processes (embedded mode; CI runs it)",
)
needs_production_mode = pytest.mark.skipif(
    "postgresql" not in settings.DATABASES["default"]["ENGINE"] or settings.CELERY_TASK_ALWAYS_EAGER,
    reason="needs PostgreSQL and Redis (production mode; CI runs it)",
)
