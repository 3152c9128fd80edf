"""Django's HTTP requests under ASGI in one thread hop (quicksend.http_handler): what Django would run, run in
one pool thread, the answer sent from the loop."""

from __future__ import annotations

import asyncio
import threading

import pytest
from asgiref.sync import AsyncToSync, SyncToAsync
from django.db import connection

from quicksend.http_handler import SyncHTTPHandler
from tests import http_handler_urls as views

MIDDLEWARE = [
    "tests.http_handler_urls.OuterRecorder",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django_htmx.middleware.HtmxMiddleware",  # async-capable: it must not take the request back to the loop
    "tests.http_handler_urls.InnerRecorder",
]


@pytest.fixture
def handler(settings):
    settings.ROOT_URLCONF = "tests.http_handler_urls"
    settings.MIDDLEWARE = MIDDLEWARE
    views.seen.clear()
    made = []

    def make(threads: int = 4) -> SyncHTTPHandler:
        made.append(SyncHTTPHandler(threads=threads))
        return made[-1]

    yield make
    for each in made:
        each.pool.shutdown()


def call(app, method: str, path: str, body: bytes = b"") -> dict:
    """One request through the ASGI app on a fresh event loop: its status, headers and body, and the loop."""
    return asyncio.run(acall(app, method, path, body))


async def acall(app, method: str, path: str, body: bytes = b"") -> dict:
    """One request through the ASGI app on the running loop."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", b"text/plain")],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }
    sent: list[dict] = []

    chunks = [{"type": "http.request", "body": body[:3], "more_body": True}]
    chunks.append({"type": "http.request", "body": body[3:], "more_body": False})

    async def receive():
        if chunks:
            return chunks.pop(0)
        await asyncio.Event().wait()  # the client stays connected

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    loop = id(asyncio.get_running_loop())
    start = sent[0]
    assert start["type"] == "http.response.start"
    assert all(m["type"] == "http.response.body" for m in sent[1:])
    assert not sent[-1].get("more_body", False)
    return {
        "status": start["status"],
        "headers": start["headers"],
        "body": b"".join(m.get("body", b"") for m in sent[1:]),
        "loop": loop,
    }


def test_a_request_runs_every_middleware_and_its_view_on_one_thread_off_the_loop(handler):
    answer = call(handler(), "POST", "/where", b"hello there")
    assert answer["status"] == 200
    assert answer["body"] == b'{"body": "hello there", "method": "POST"}'
    threads = {views.seen["outer_thread"], views.seen["inner_thread"], views.seen["view_thread"]}
    assert len(threads) == 1
    assert threads != {threading.get_ident()}  # not the loop's thread


def test_a_coroutine_a_view_waits_for_runs_on_the_servers_loop(handler):
    answer = call(handler(), "GET", "/on-the-loop")
    assert answer["status"] == 200
    assert views.seen["coroutine_loop"] == answer["loop"]


def test_a_streaming_answer_is_made_on_the_requests_thread_and_sent_whole(handler):
    answer = call(handler(), "GET", "/streamed")
    assert answer["status"] == 200
    assert answer["body"] == b"first,second"
    assert views.seen["stream_thread"] == views.seen["inner_thread"]
    assert (b"Content-Type", b"text/csv") in answer["headers"]


@pytest.mark.django_db(transaction=True)
def test_an_async_streaming_answer_streams_from_the_loop_and_its_thread_gives_its_connection_back(handler):
    app = handler(threads=1)
    answer = call(app, "GET", "/async-streamed")
    assert (answer["status"], answer["body"]) == (200, b"early,late")
    assert app.pool.submit(lambda: connection.connection is None).result()


def test_a_file_answer_is_sent_whole_with_its_headers(handler):
    answer = call(handler(), "GET", "/a-file")
    assert (answer["status"], answer["body"]) == (200, b"x" * 70_000)
    headers = dict(answer["headers"])
    assert headers[b"Content-Length"] == b"70000"
    assert headers[b"Content-Disposition"] == b'attachment; filename="plan.txt"'


def test_headers_and_cookies_reach_the_client(handler):
    answer = call(handler(), "GET", "/cookie")
    assert (b"X-Answer", b"42") in answer["headers"]
    cookies = [value for name, value in answer["headers"] if name == b"Set-Cookie"]
    assert len(cookies) == 1 and cookies[0].startswith(b"flavour=oat")


def test_a_failing_view_answers_500_and_the_next_request_is_served(handler):
    app = handler()
    assert call(app, "GET", "/broken")["status"] == 500
    assert call(app, "GET", "/where")["status"] == 200
    assert call(app, "GET", "/nowhere")["status"] == 404


@pytest.mark.django_db(transaction=True)
def test_the_requests_database_connection_is_given_back_on_its_own_thread(handler):
    app = handler(threads=1)  # one thread: the check below runs where the request ran
    assert call(app, "GET", "/database")["status"] == 200
    assert app.pool.submit(lambda: connection.connection is None).result()


def test_requests_in_flight_together_run_side_by_side_on_the_pools_threads(handler):
    app = handler(threads=3)
    views.together.reset()

    async def three():
        return await asyncio.gather(*(acall(app, "GET", "/together") for _ in range(3)))

    answers = asyncio.run(three())  # each view waits until all three are in: one thread would time out
    assert [a["status"] for a in answers] == [200] * 3
    assert {a["body"] for a in answers} == {b"together"}


def test_a_request_costs_one_trip_to_a_thread_and_none_back_to_the_loop(handler, monkeypatch):
    trips = {"to a thread": 0, "to the loop": 0}
    to_thread, to_loop = SyncToAsync.__call__, AsyncToSync.__call__

    async def counted_to_thread(self, *args, **kwargs):
        trips["to a thread"] += 1
        return await to_thread(self, *args, **kwargs)

    def counted_to_loop(self, *args, **kwargs):
        trips["to the loop"] += 1
        return to_loop(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counted_to_thread)
    monkeypatch.setattr(AsyncToSync, "__call__", counted_to_loop)
    assert call(handler(), "POST", "/where", b"hello")["status"] == 200
    assert trips == {"to a thread": 1, "to the loop": 0}


def test_a_web_thread_count_under_one_is_refused_naming_the_setting(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.WEB_THREADS = 0
    with pytest.raises(ImproperlyConfigured, match="WEB_THREADS must be 1 or more"):
        SyncHTTPHandler()
