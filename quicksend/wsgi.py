"""WSGI entry point (HTTP only; the product is served over ASGI for WebSockets)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quicksend.settings")
application = get_wsgi_application()

from quicksend.startup import on_process_start  # noqa: E402

on_process_start()
