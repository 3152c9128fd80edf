"""The ASGI fast path for Twilio's two webhooks (``POST /api/incoming-sms``, ``POST /api/status-callback``).

Twilio's webhooks are the product's hottest request and need none of Django's per-request machinery: no
session, user, tenant, CSRF, messages or CSP (the signature is the authentication; the account it names is the
tenant). Through Django's ASGI handler each request also costs a fresh thread context and a sync/async hop per
middleware; measured on this project that was most of the request's CPU (docs/benchmarks.md, "Webhook
ingest"). So ``quicksend.asgi`` routes these two paths here, and this module:

1. reads the body (at most ``MAX_BODY_BYTES``; Twilio's forms are a few KB: 413 above),
2. runs ``messaging.services.ingest.handle_webhook`` (the same function the Django views run: verify, check,
   one INSERT, queue a drain) on a small persistent thread pool, since the ORM is synchronous,
3. answers with its status and body.

Any other method on these paths, and every other path, goes to Django as usual. A database that is down gives
503 (Twilio retries or logs it) with nothing stored. Each pool thread keeps its database connection between
webhooks (taking one from the pool per request cost more than the INSERT itself) and hands it back after a
database error or ``CONNECTION_MAX_SECONDS``, so a restarted or failed-over database is picked up. The
threads hold at most ``QUICKSEND_WEBHOOK_THREADS`` of the process's pool connections (``DB_POOL_MAX``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import DatabaseError, connection

from messaging.services.ingest import WEBHOOK_PATHS, WebhookResponse, handle_webhook
from messaging.signatures import Form

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
MAX_FIELDS = 1000
CONNECTION_MAX_SECONDS = 60.0
FORM_TYPE = "application/x-www-form-urlencoded"

TOO_LARGE = WebhookResponse(
    413, b"The form is larger than 256 KB; Twilio's webhooks are a few KB.", "text/plain"
)
BAD_REQUEST = WebhookResponse(400, b"The form has more than 1,000 fields.", "text/plain")
UNAVAILABLE = WebhookResponse(503, b"Service unavailable", "text/plain")
SERVER_ERROR = WebhookResponse(500, b"Server error", "text/plain")

_executor: ThreadPoolExecutor | None = None
_opened = threading.local()


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(
            max_workers=settings.QUICKSEND_WEBHOOK_THREADS, thread_name_prefix="webhook"
        )
    return _executor


def _run(kind: str, path: str, query_string: str, body: bytes, content_type: str, signature: str):
    """On a pool thread: the whole webhook."""
    try:
        text = body.decode("utf-8", "replace") if content_type.split(";")[0].strip() == FORM_TYPE else ""
        try:
            form = Form.parse(text, max_fields=MAX_FIELDS)
        except ValueError:  # more fields than any Twilio form has
            return BAD_REQUEST
        answer = handle_webhook(kind, path, query_string, form, signature)
    except DatabaseError:
        log.exception("webhook %s not stored: database error", path)
        connection.close()
        return UNAVAILABLE
    except Exception:
        log.exception("webhook %s failed", path)
        connection.close()
        return SERVER_ERROR
    _recycle()
    return answer


def _recycle() -> None:
    """Keep this thread's connection, unless it is old or broken (then the next webhook takes a fresh one)."""
    if connection.connection is None:
        _opened.at = None
        return
    now = time.monotonic()
    opened = getattr(_opened, "at", None)
    if opened is None:
        _opened.at = now
    elif now - opened > CONNECTION_MAX_SECONDS or connection.in_atomic_block or connection.errors_occurred:
        connection.close()
        _opened.at = None


async def serve(kind: str, scope, receive, send) -> None:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        if len(body) > MAX_BODY_BYTES:
            await _respond(send, TOO_LARGE)
            return
        if not message.get("more_body", False):
            break
    signature = content_type = ""
    for name, value in scope.get("headers", ()):
        if name == b"x-twilio-signature":
            signature = value.decode("latin-1")
        elif name == b"content-type":
            content_type = value.decode("latin-1").lower()
    query_string = scope.get("query_string", b"").decode("latin-1")
    answer = await asyncio.get_running_loop().run_in_executor(
        _pool(), _run, kind, scope["path"], query_string, bytes(body), content_type, signature
    )
    await _respond(send, answer)


async def _respond(send, answer: WebhookResponse) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": answer.status,
            "headers": [
                (b"content-type", answer.content_type.encode()),
                (b"content-length", str(len(answer.body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": answer.body})


def with_webhooks(app):
    """``app`` with Twilio's two webhook paths (POST) answered by the fast path."""

    async def http(scope, receive, send):
        kind = WEBHOOK_PATHS.get(scope["path"]) if scope["method"] == "POST" else None
        if kind is None:
            await app(scope, receive, send)
        else:
            await serve(kind, scope, receive, send)

    return http
