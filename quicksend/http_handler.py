"""Django's HTTP requests under ASGI, one thread hop per request.

Every view and every middleware of this project is synchronous. Django's own ASGI handler serves them from
the event loop anyway: a fresh thread per request (``ThreadSensitiveContext``), ``request_started`` in one
hop, the middleware chain in another, a hop back to the loop at the first async-capable middleware below a
sync-only one, a hop again for the view and one more for ``response.close()``. Measured on the send API, that
glue (thread starts, futures, context copies) was about a fifth of the web process's CPU
(``docs/benchmarks.md``, "Send cost").

``SyncHTTPHandler`` reads the body on the loop like Django does, then runs everything Django would run for
the request (``request_started``, the request object, the middleware chain in sync mode, the view, and for a
streaming response with a sync iterator its content) in **one** call on a bounded pool of threads, closes the
response there (``request_finished`` returns the thread's database connection to the pool on the thread that
used it), and sends the answer from the loop. Behaviour is Django's: the same middleware, the same error
handling (``convert_exception_to_response``), the same responses. Two differences, both deliberate:

- a client that disconnects mid-request does not cancel the view (Django cannot stop a sync view either; it
  only stops waiting for it);
- a sync streaming response is gathered in the thread before it is sent (Django gathers it the same way under
  ASGI: ``StreamingHttpResponse.__aiter__`` lists a sync iterator in one hop). An async one streams as usual.

Code that calls ``async_to_sync`` from a view still runs its coroutine on the server's loop (the pool thread
is entered through asgiref's ``SyncToAsync``, which tells ``AsyncToSync`` where the loop is), so the
in-memory channel layer of the embedded mode keeps working.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import SyncToAsync, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import ImproperlyConfigured, RequestAborted
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.db import close_old_connections
from django.http import FileResponse, HttpResponseServerError
from django.urls import set_script_prefix

log = logging.getLogger(__name__)


class SyncHTTPHandler(ASGIHandler):
    """An ASGI app for Django's HTTP requests: the body is read on the loop, the rest runs in one hop."""

    def __init__(self, threads: int | None = None) -> None:
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        size = threads if threads is not None else settings.WEB_THREADS
        if size < 1:
            raise ImproperlyConfigured(f"WEB_THREADS must be 1 or more (threads per web process), not {size}")
        self.pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="django-http")
        self._respond_in_pool = SyncToAsync(self.respond, thread_sensitive=False, executor=self.pool)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            response, chunks = await self._respond_in_pool(scope, body_file)
        finally:
            body_file.close()
        if chunks is None and response.streaming:
            # An async iterator: streamed from the loop, as Django does, then closed in the pool.
            try:
                await self.send_response(response, send)
            finally:
                await sync_to_async(response.close, thread_sensitive=False, executor=self.pool)()
            return
        if chunks is not None:
            response.streaming_content = _replay(chunks)  # gathered in the thread: sent with no hop back
        await self.send_response(response, send)  # Django's own: headers, cookies, chunking

    def respond(self, scope, body_file):
        """In a pool thread: everything Django does for the request, and the response closed. Returns the
        response and, for a sync streaming response, its content (else ``None``)."""
        set_script_prefix(get_script_prefix(scope))
        chunks = None
        try:
            signals.request_started.send(sender=self.__class__, scope=scope)
            request, response = self.create_request(scope, body_file)
            if request is not None:
                response = self.get_response(request)
                response._handler_class = self.__class__
                if isinstance(response, FileResponse):
                    response.block_size = self.chunk_size
            if response.streaming:
                if response.is_async:
                    # Sent and closed from the loop; the database connections this thread used go back now,
                    # as its close (``request_finished``) may run on another thread of the pool.
                    close_old_connections()
                    return response, None
                chunks = list(response.streaming_content)
        except Exception:
            # Django's own handling has turned every error of a view or middleware into a response already;
            # this is an error around it (a signal receiver, the streaming content itself).
            log.exception("request to %s failed", scope.get("path"))
            signals.request_finished.send(sender=self.__class__)
            return HttpResponseServerError("Internal Server Error", content_type="text/plain"), None
        response.close()
        return response, chunks


async def _replay(chunks: list[bytes]):
    for chunk in chunks:
        yield chunk
