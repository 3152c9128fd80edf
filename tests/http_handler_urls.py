"""Views that report where and how the HTTP handler ran them (tests/test_http_handler.py)."""

from __future__ import annotations

import asyncio
import io
import threading

from asgiref.sync import async_to_sync
from django.db import connection
from django.http import FileResponse, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path

seen: dict = {}


def where(request):
    seen["view_thread"] = threading.get_ident()
    return JsonResponse({"body": request.body.decode(), "method": request.method})


def database(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    seen["view_thread"] = threading.get_ident()
    return HttpResponse("ok")


def on_the_loop(request):
    async def which_loop():
        return id(asyncio.get_running_loop())

    seen["coroutine_loop"] = async_to_sync(which_loop)()
    return HttpResponse("ok")


together = threading.Barrier(3, timeout=10)


def all_together(request):
    together.wait()
    return HttpResponse("together")


def streamed(request):
    def parts():
        seen["stream_thread"] = threading.get_ident()
        yield b"first,"
        yield b"second"

    return StreamingHttpResponse(parts(), content_type="text/csv")


def async_streamed(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")

    async def parts():
        yield b"early,"
        yield b"late"

    return StreamingHttpResponse(parts(), content_type="text/plain")


def a_file(request):
    return FileResponse(io.BytesIO(b"x" * 70_000), filename="plan.txt", as_attachment=True)


def cookie(request):
    response = HttpResponse("ok")
    response.set_cookie("flavour", "oat")
    response["X-Answer"] = "42"
    return response


def broken(request):
    raise RuntimeError("the view failed")


urlpatterns = [
    path("where", where),
    path("database", database),
    path("on-the-loop", on_the_loop),
    path("streamed", streamed),
    path("async-streamed", async_streamed),
    path("a-file", a_file),
    path("cookie", cookie),
    path("broken", broken),
    path("together", all_together),
]


class Recorder:
    """Notes the thread each middleware position runs on (``where`` names it in ``seen``)."""

    where = ""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        seen[f"{self.where}_thread"] = threading.get_ident()
        return self.get_response(request)


class OuterRecorder(Recorder):
    where = "outer"


class InnerRecorder(Recorder):
    where = "inner"
