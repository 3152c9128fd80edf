"""ASGI entry point: HTTP through Django, WebSocket ``/ws/`` through Channels."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quicksend.settings")

import django  # noqa: E402

django.setup(set_prefix=False)

from quicksend.http_handler import SyncHTTPHandler  # noqa: E402

django_asgi_app = SyncHTTPHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import path  # noqa: E402

from messaging.twilio.webhook_asgi import with_webhooks  # noqa: E402
from quicksend.consumers import EmbedEventsConsumer, EventsConsumer  # noqa: E402
from quicksend.startup import on_process_start  # noqa: E402

on_process_start()


def with_sandbox(django_app):
    """Route ``/sandbox/…`` to the Twilio sandbox at the ASGI level, everything else to Django.

    The sandbox must not go through Django: the app calls it over HTTP from sync views, and Django runs
    every sync view on one thread, so a sandbox behind Django would wait on the very thread calling it.
    """
    if not settings.QUICKSEND_SANDBOX:
        return django_app
    from messaging.twilio.public_urls import incoming_sms_url
    from sandbox.app import application as sandbox_app
    from sandbox.state import get_store

    # The customer phone (/sandbox/phone/) texts the demo numbers: their texts come to this app, as if an
    # admin had pressed "Configure this number for me".
    get_store().point_demo_numbers(incoming_sms_url())

    async def http(scope, receive, send):
        if scope["path"].startswith("/sandbox/"):
            await sandbox_app(scope, receive, send)
        else:
            await django_app(scope, receive, send)

    return http


application = ProtocolTypeRouter(
    {
        "http": with_webhooks(with_sandbox(django_asgi_app)),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(
                URLRouter(
                    [
                        path("ws/", EventsConsumer.as_asgi()),
                        path("ws/embed/", EmbedEventsConsumer.as_asgi()),
                    ]
                )
            )
        ),
    }
)
