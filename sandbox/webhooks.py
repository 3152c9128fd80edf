"""Signed webhooks as Twilio sends them: form-encoded, ``X-Twilio-Signature``, 5 s connect, 15 s in all.

Status callbacks are most of the sandbox's work (three per message), so plain ``http://`` URLs go through a
small keep-alive HTTP/1.1 client on asyncio streams; ``https://`` goes through aiohttp. Measured: httpx
managed ~130 callbacks/s with thousands of pending posts, aiohttp ~600/s, this client several times that
(docs/benchmarks.md, "Sandbox").
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
from urllib.parse import quote_plus, urlencode, urlsplit

import aiohttp

CONNECT_TIMEOUT = 5.0
TOTAL_TIMEOUT = 15.0
MAX_CONCURRENT = 64  # posts in flight per sandbox process; the rest wait their turn
MAX_BODY = 1024 * 1024
USER_AGENT = "TwilioProxy/1.1 (QuickSend sandbox)"


class WebhookError(Exception):
    """The webhook could not be delivered (refused, timed out, malformed answer…)."""


def sign(token: str, url: str, params: dict[str, str]) -> str:
    """X-Twilio-Signature: base64(HMAC-SHA1(token, url + name1 + value1 + … in name order))."""
    payload = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


# Callbacks repeat the same names and values (sids, numbers, statuses): quoting is pure Python, cache it.
_quote = functools.lru_cache(maxsize=16384)(quote_plus)


def form_encode(params: dict[str, str]) -> bytes:
    return "&".join(f"{_quote(k)}={_quote(v)}" for k, v in params.items()).encode()


class _Connection:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        self.writer.close()


class WebhookClient:
    """One per event loop: idle keep-alive connections per (host, port), a cap on posts in flight."""

    def __init__(self) -> None:
        self.idle: dict[tuple[str, int], list[_Connection]] = {}
        self.slots = asyncio.Semaphore(MAX_CONCURRENT)
        self.session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        for connections in self.idle.values():
            for connection in connections:
                connection.close()
        self.idle.clear()
        if self.session is not None:
            await self.session.close()

    async def send(
        self, token: str, url: str, params: dict[str, str], method: str = "POST"
    ) -> tuple[int, str]:
        """Deliver the signed webhook; returns (HTTP status, answer text) or raises WebhookError."""
        if method == "GET":
            url = url + ("&" if "?" in url else "?") + urlencode(params)
            signature, body = sign(token, url, {}), b""
        else:
            signature, body = sign(token, url, params), form_encode(params)
        async with self.slots:
            try:
                async with asyncio.timeout(TOTAL_TIMEOUT):
                    if url.startswith("http://"):
                        return await self._plain(method, url, body, signature)
                    return await self._aiohttp(method, url, body, signature)
            except TimeoutError:
                raise WebhookError(f"no answer within {TOTAL_TIMEOUT:.0f} s")
            except (
                OSError,
                aiohttp.ClientError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                ValueError,
            ) as exc:
                raise WebhookError(f"{exc.__class__.__name__}: {exc}") from exc

    async def _aiohttp(self, method: str, url: str, body: bytes, signature: str) -> tuple[int, str]:
        if self.session is None or self.session.closed:
            self.session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=TOTAL_TIMEOUT, connect=CONNECT_TIMEOUT),
                headers={"User-Agent": USER_AGENT},
            )
        headers = {"X-Twilio-Signature": signature}
        if method == "POST":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        async with self.session.request(method, url, data=body or None, headers=headers) as response:
            return response.status, await response.text(errors="replace")

    async def _plain(self, method: str, url: str, body: bytes, signature: str) -> tuple[int, str]:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or 80
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = parts.netloc.rpartition("@")[2]
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: {USER_AGENT}\r\n"
            f"X-Twilio-Signature: {signature}\r\nAccept: */*\r\n"
        )
        if method == "POST":
            head += f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
        request = head.encode("latin-1") + b"\r\n" + body
        key = (host, port)
        pool = self.idle.setdefault(key, [])
        # A pooled connection the other side has just closed fails at once: retry once on a fresh one.
        for attempt in range(2):
            reused = bool(pool) and attempt == 0
            if reused:
                connection = pool.pop()
            else:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    reader, writer = await asyncio.open_connection(host, port)
                connection = _Connection(reader, writer)
            try:
                connection.writer.write(request)
                status, text, keep_alive = await self._read_response(connection.reader, method)
            except (OSError, asyncio.IncompleteReadError) as exc:
                connection.close()
                if reused and not getattr(exc, "partial", b""):
                    continue
                raise
            if keep_alive:
                pool.append(connection)
            else:
                connection.close()
            return status, text
        raise WebhookError("connection closed")

    @staticmethod
    async def _read_response(reader: asyncio.StreamReader, method: str) -> tuple[int, str, bool]:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        status = int(rest[:3])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            data = b""
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")  # no trailers expected
                    break
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
                if sum(map(len, chunks)) > MAX_BODY:
                    raise ValueError("answer too large")
            data = b"".join(chunks)
        elif "content-length" in headers:
            length = int(headers["content-length"])
            if length > MAX_BODY:
                raise ValueError("answer too large")
            data = await reader.readexactly(length)
        else:
            data = await reader.read(MAX_BODY)
            keep_alive = False
        charset = "utf-8"
        content_type = headers.get("content-type", "")
        if "charset=" in content_type:
            charset = content_type.split("charset=", 1)[1].split(";")[0].strip() or "utf-8"
        try:
            text = data.decode(charset, "replace")
        except LookupError:
            text = data.decode("utf-8", "replace")
        return status, text, keep_alive


_clients: dict[int, WebhookClient] = {}


def client() -> WebhookClient:
    """The running loop's client (connections and locks belong to one loop)."""
    loop = asyncio.get_running_loop()
    found = _clients.get(id(loop))
    if found is None:
        found = _clients[id(loop)] = WebhookClient()
    return found


async def close() -> None:
    found = _clients.pop(id(asyncio.get_running_loop()), None)
    if found is not None:
        await found.close()


async def post_signed(token: str, url: str, params: dict[str, str], method: str = "POST") -> tuple[int, str]:
    return await client().send(token, url, params, method)
