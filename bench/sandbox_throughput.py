"""How many messages per second the standalone Twilio sandbox accepts and calls back.

    python bench/sandbox_throughput.py [--messages 3000] [--concurrency 64]

Starts ``manage.py twilio_sandbox`` on a free port, a callback receiver in a child process (a minimal
asyncio HTTP server that counts requests), creates the messages concurrently over HTTP (aiohttp, form-encoded,
Basic auth: what the twilio library sends) and waits for every status callback (sending, sent, delivered:
three per message). The account's sender rate is raised so the rate limiter is not what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote_plus

import aiohttp

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def receiver(port: int, counter, ready) -> None:
    """Count HTTP requests (keep-alive, Content-Length bodies) and answer 200 with an empty body."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                with counter.get_lock():
                    counter.value += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nContent-Type: text/plain\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def start_sandbox(port: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1", QUICKSEND_DISABLE_SCHEDULER="1")
    cmd = [sys.executable, "manage.py", "twilio_sandbox", "--port", str(port)]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


async def run(messages: int, concurrency: int, sandbox_port: int, callback_port: int, counter) -> dict:
    base = f"http://127.0.0.1:{sandbox_port}/sandbox"
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        deadline = time.monotonic() + 30
        while True:
            try:
                async with http.get(f"{base}/control/health") as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the sandbox did not start")
            await asyncio.sleep(0.1)
        async with http.post(
            f"{base}/control/accounts",
            json={
                "friendly_name": "bench",
                "behaviour": {"rates": {"local": 1_000_000}, "concurrency_limit": 10_000},
                "numbers": [{"phone_number": "+12065550100", "type": "local"}],
            },
        ) as response:
            account = await response.json()
        sid, token = account["sid"], account["auth_token"]
        auth_header = "Authorization: Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()
        path = f"/sandbox/2010-04-01/Accounts/{sid}/Messages.json"
        callback = quote_plus(f"http://127.0.0.1:{callback_port}/status")
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(messages):
            queue.put_nowait(i)
        failures = 0

        async def worker() -> None:
            # A lean keep-alive HTTP/1.1 client (what aiohttp or httpx would cost here is measured in the
            # client, not in the sandbox); each request is exactly what the twilio library sends.
            nonlocal failures
            reader, writer = await asyncio.open_connection("127.0.0.1", sandbox_port)
            while not queue.empty():
                i = queue.get_nowait()
                to = f"%2B1415555{i % 10000:04d}"
                body = f"To={to}&From=%2B12065550100&Body=bench+{i}&StatusCallback={callback}".encode()
                head = (
                    f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{sandbox_port}\r\n{auth_header}\r\n"
                    f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n"
                )
                writer.write(head.encode() + body)
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
                await reader.readexactly(length)
                if not head.startswith(b"HTTP/1.1 201"):
                    failures += 1
            writer.close()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        created = time.perf_counter() - started
        expected = 3 * messages
        deadline = time.monotonic() + 60
        while counter.value < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        called_back = time.perf_counter() - started
        return {
            "messages": messages,
            "concurrency": concurrency,
            "create_failures": failures,
            "creates_per_s": messages / created,
            "callbacks": counter.value,
            "callbacks_per_s": counter.value / called_back,
            "messages_completed_per_s": messages / called_back,
            "seconds": called_back,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--port", type=int, help="use a sandbox already listening on this port")
    args = parser.parse_args()
    sandbox_port, callback_port = args.port or free_port(), free_port()
    counter = multiprocessing.Value("q", 0)
    ready = multiprocessing.Event()
    child = multiprocessing.Process(target=receiver, args=(callback_port, counter, ready), daemon=True)
    child.start()
    ready.wait(10)
    sandbox = None if args.port else start_sandbox(sandbox_port)
    try:
        result = asyncio.run(run(args.messages, args.concurrency, sandbox_port, callback_port, counter))
    finally:
        if sandbox is not None:
            sandbox.terminate()
            sandbox.wait(10)
        child.terminate()
    print(
        f"sandbox: {result['messages']} messages, concurrency {result['concurrency']}: "
        f"{result['creates_per_s']:.0f} creates/s, {result['callbacks_per_s']:.0f} callbacks/s "
        f"({result['callbacks']} callbacks, {result['messages_completed_per_s']:.0f} messages fully "
        f"called back/s, {result['seconds']:.1f} s, {result['create_failures']} failed creates)"
    )


if __name__ == "__main__":
    main()
