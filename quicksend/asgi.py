"""ASGI entry point: HTTP through Django, WebSocket ``/ws/`` through Channels."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quicksend.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from quicksend.consumers import EventsConsumer  # noqa: E402
from quicksend.startup import on_process_start  # noqa: E402

on_process_start()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter([path("ws/", EventsConsumer.as_asgi())]))
        ),
    }
)
