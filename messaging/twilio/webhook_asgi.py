"""The ASGI fast path for Twilio's two webhooks (``POST /api/incoming-sms``, ``POST /api/status-callback``).

Twilio's webhooks are the product's hottest request and need none of Django's per-request machinery: no
session, user, tenant, CSRF, messages or CSP (the signature is the authentication; the account it names is the
tenant). Through Django's ASGI handler each request also costs a fresh thread context and a sync/async hop per
middleware; measured on this project that was most of the request's CPU (docs/benchmarks.md, "Webhook
ingest"). So ``quicksend.asgi`` routes these two paths here, and this module:

1. reads the body (at most ``MAX_BODY_BYTES``; Twilio's forms are a few KB: 413 above),
2. hands the request to this process's **writer**: one thread that takes every request waiting at that
   moment (at most ``MAX_BATCH``) as one batch, parses and verifies each (``ingest.check_webhook``, the same
   checks the Django views run) and stores the verified ones with one INSERT per kind in one transaction
   (``ingest.store_events``), then queues at most one drain per kind. While a batch is being written the next
   requests gather, so under load each commit and each Redis call serves many webhooks, and a lone webhook is
   written at once (no timer, no added wait),
3. answers each request with its own status and body.

Any other method on these paths, and every other path, goes to Django as usual. A database that is down gives
503 (Twilio retries or logs it) with nothing stored; one webhook the database refuses is answered on its own
(``ingest.store_events``), never its batch. The writer keeps its database connection between
batches (taking one from the pool per request cost more than the INSERT itself) and hands it back after a
database error or ``CONNECTION_MAX_SECONDS``, so a restarted or failed-over database is picked up.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor

from django.db import DatabaseError, InterfaceError, OperationalError, connection

from messaging.twilio.ingest import (
    UNAVAILABLE,
    WEBHOOK_PATHS,
    Event,
    WebhookResponse,
    check_webhook,
    store_events,
)
from messaging.twilio.signatures import Form

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
MAX_FIELDS = 1000
CONNECTION_MAX_SECONDS = 60.0
FORM_TYPE = "application/x-www-form-urlencoded"

TOO_LARGE = WebhookResponse(
    413, b"The form is larger than 256 KB; Twilio's webhooks are a few KB.", "text/plain"
)
BAD_REQUEST = WebhookResponse(400, b"The form has more than 1,000 fields.", "text/plain")
SERVER_ERROR = WebhookResponse(500, b"Server error", "text/plain")

MAX_BATCH = 200
# A batch that failed on its connection this quickly is tried once more on a fresh one (a connection the
# server closed fails its first statement at once); one that took longer met a database that is down, and a
# second try would only keep Twilio waiting.
RETRY_WITHIN_SECONDS = 3.0

_executor: ThreadPoolExecutor | None = None
_opened = threading.local()
_batchers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _writer() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhook-writer")
    return _executor


def shutdown() -> None:
    """Close the writer's database connection and stop its thread (tests; a new one starts on demand)."""
    global _executor
    executor, _executor = _executor, None
    if executor is not None:
        executor.submit(lambda: connection.close()).result()  # the writer thread's own connection
        executor.shutdown()


class Request:
    __slots__ = ("kind", "path", "query_string", "body", "content_type", "signature")

    def __init__(self, kind, path, query_string, body, content_type, signature) -> None:
        self.kind, self.path, self.query_string = kind, path, query_string
        self.body, self.content_type, self.signature = body, content_type, signature


def _check(request: Request) -> Event | WebhookResponse:
    form_type = request.content_type.split(";")[0].strip() == FORM_TYPE
    text = request.body.decode("utf-8", "replace") if form_type else ""
    try:
        form = Form.parse(text, max_fields=MAX_FIELDS)
    except ValueError:  # more fields than any Twilio form has
        return BAD_REQUEST
    return check_webhook(request.kind, request.path, request.query_string, form, request.signature)


def _write(requests: list[Request]) -> list[WebhookResponse]:
    """On the writer thread: check every request of a batch, store the verified ones together.

    The writer keeps its connection between batches, so a connection the server has closed since (a
    restart, a failover, an administrator's ``pg_terminate_backend``) fails the batch's first statement at
    once: the batch is tried once more on a fresh connection (the pool checks a connection before handing
    it out) before anyone is answered 503. A batch that was slow to fail met a database that is down: 503."""
    try:
        started = time.monotonic()
        try:
            answers = _write_once(requests)
        except (OperationalError, InterfaceError):
            connection.close()
            if time.monotonic() - started > RETRY_WITHIN_SECONDS:
                raise  # slow to fail: the database is down or unreachable, not just this connection
            log.warning("webhook writer: the database connection failed; trying again on a fresh one")
            answers = _write_once(requests)
    except DatabaseError:
        log.exception("%d webhooks not stored: database error", len(requests))
        connection.close()
        return [UNAVAILABLE] * len(requests)
    except Exception:
        log.exception("%d webhooks failed", len(requests))
        connection.close()
        return [SERVER_ERROR] * len(requests)
    _recycle()
    return answers


def _write_once(requests: list[Request]) -> list[WebhookResponse]:
    answers: list[WebhookResponse | None] = [None] * len(requests)
    events: list[Event] = []
    where: list[int] = []
    for i, request in enumerate(requests):
        try:
            checked = _check(request)
        except DatabaseError:
            raise
        except Exception:
            log.exception("webhook %s failed", request.path)
            checked = SERVER_ERROR
        if isinstance(checked, Event):
            events.append(checked)
            where.append(i)
        else:
            answers[i] = checked
    for i, answer in zip(where, store_events(events), strict=True):
        answers[i] = answer
    return answers


class _Batcher:
    """Per event loop: the requests waiting for the writer, and whether a batch is being written."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.waiting: list[tuple[Request, asyncio.Future]] = []
        self.busy = False

    async def submit(self, request: Request) -> WebhookResponse:
        future = self.loop.create_future()
        self.waiting.append((request, future))
        if not self.busy:
            self.busy = True
            self.loop.create_task(self._run())
        return await future

    async def _run(self) -> None:
        try:
            while self.waiting:
                batch = self.waiting[:MAX_BATCH]
                del self.waiting[:MAX_BATCH]
                try:
                    answers = await self.loop.run_in_executor(_writer(), _write, [r for r, _ in batch])
                except Exception:  # the executor itself failed (shut down): nothing was stored
                    log.exception("webhook writer failed")
                    answers = [UNAVAILABLE] * len(batch)
                for (_, future), answer in zip(batch, answers, strict=True):
                    if not future.done():
                        future.set_result(answer)
        finally:
            self.busy = False


def _batcher() -> _Batcher:
    loop = asyncio.get_running_loop()
    batcher = _batchers.get(loop)
    if batcher is None:
        batcher = _batchers[loop] = _Batcher(loop)
    return batcher


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
    request = Request(kind, scope["path"], query_string, bytes(body), content_type, signature)
    await _respond(send, await _batcher().submit(request))


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
