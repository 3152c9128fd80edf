"""The sandbox's webhook sender: Twilio's signature, and its small keep-alive HTTP client."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from sandbox import webhooks
from sandbox.webhooks import WebhookClient, WebhookError, sign


def test_signature_matches_twilios_worked_example():
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675310",
        "Digits": "1234",
        "From": "+14158675310",
        "To": "+18005551212",
    }
    assert (
        sign("12345", "https://example.com/myapp.php?foo=1&bar=2", params) == "L/OH5YylLD5NRKLltdqwSvS0BnU="
    )


@given(
    params=st.dictionaries(st.text(min_size=1, max_size=12), st.text(max_size=40), max_size=8),
    token=st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),
)
def test_signature_is_what_the_request_validator_accepts(params, token):
    url = "https://crm.example.test/api/sms/status?org=7"
    assert RequestValidator(token).validate(url, params, sign(token, url, params))


class FakeServer:
    """A raw HTTP server whose answers the test scripts, counting connections and requests."""

    def __init__(self, answers: list[bytes], close_after_each: bool = False, silent: bool = False):
        self.answers = answers
        self.close_after_each = close_after_each
        # A silent server reads the request and never answers until the test is over.
        self.silent = silent
        self.released = asyncio.Event()
        self.connections = 0
        self.requests: list[bytes] = []

    async def handle(self, reader, writer):
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length) if length else b""
                self.requests.append(head + body)
                if self.silent:
                    await self.released.wait()
                writer.write(self.answers[min(len(self.requests), len(self.answers)) - 1])
                await writer.drain()
                if self.close_after_each:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def __aenter__(self):
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/hook?x=1"
        return self

    async def __aexit__(self, *exc):
        self.released.set()
        self.server.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 11\r\n\r\n<Response/>"


def run(coro):
    return asyncio.run(coro)


def test_keep_alive_reuses_one_connection_and_sends_signed_forms():
    async def scenario():
        async with FakeServer([OK]) as server:
            client = WebhookClient()
            for status in ("sending", "sent", "delivered"):
                assert await client.send("f" * 32, server.url, {"MessageStatus": status, "To": "+1 415"}) == (
                    200,
                    "<Response/>",
                )
            await client.close()
            return server

    server = run(scenario())
    assert server.connections == 1 and len(server.requests) == 3
    first = server.requests[0].decode()
    assert first.startswith("POST /hook?x=1 HTTP/1.1\r\n")
    assert "MessageStatus=sending&To=%2B1+415" in first
    signature = sign("f" * 32, server.url, {"MessageStatus": "sending", "To": "+1 415"})
    assert f"X-Twilio-Signature: {signature}\r\n" in first


def test_chunked_answers_are_read():
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n<Resp\r\n6\r\nonse/>\r\n0\r\n\r\n"

    async def scenario():
        async with FakeServer([chunked]) as server:
            client = WebhookClient()
            first = await client.send("t", server.url, {"a": "1"})
            second = await client.send("t", server.url, {"a": "2"})
            await client.close()
            return first, second, server.connections

    assert run(scenario()) == ((200, "<Response/>"), (200, "<Response/>"), 1)


def test_a_connection_closed_by_the_server_is_replaced():
    closing = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops"

    async def scenario():
        async with FakeServer([closing], close_after_each=True) as server:
            client = WebhookClient()
            results = [await client.send("t", server.url, {"n": str(i)}) for i in range(3)]
            await client.close()
            return results, server.connections

    results, connections = run(scenario())
    assert results == [(500, "oops")] * 3 and connections == 3


def test_unreachable_url_is_a_webhook_error():
    async def scenario():
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        client = WebhookClient()
        try:
            await client.send("t", f"http://127.0.0.1:{port}/", {})
        finally:
            await client.close()

    with pytest.raises(WebhookError):
        run(scenario())


def test_a_silent_server_times_out(monkeypatch):
    monkeypatch.setattr(webhooks, "TOTAL_TIMEOUT", 0.2)

    async def scenario():
        async with FakeServer([OK], silent=True) as server:
            client = WebhookClient()
            try:
                await client.send("t", server.url, {})
            finally:
                await client.close()

    with pytest.raises(WebhookError, match="no answer"):
        run(scenario())


def test_get_webhooks_carry_the_params_in_the_signed_url():
    async def scenario():
        async with FakeServer([OK]) as server:
            client = WebhookClient()
            await client.send("tok", server.url, {"Body": "hi there", "From": "+1"}, method="GET")
            await client.close()
            return server

    server = run(scenario())
    request = server.requests[0].decode()
    assert request.startswith("GET /hook?x=1&Body=hi+there&From=%2B1 HTTP/1.1")
    full_url = server.url + "&Body=hi+there&From=%2B1"
    signature = request.split("X-Twilio-Signature: ")[1].split("\r\n")[0]
    assert RequestValidator("tok").validate(full_url, {}, signature)
