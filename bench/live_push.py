"""Live push latency: 100 WebSocket clients connected through the production ASGI server (uvicorn, Redis
channel layer), all subscribed to one conversation; for each inbound text, the time from the moment its
signed webhook is sent to ``POST /api/incoming-sms`` (the clock starts before the request leaves) to the
``message.created`` frame at each client. The whole production path is inside: signature check and store on
the webhook fast path, the drain task on a real Celery worker (``--pool solo``), processing (record match,
conversation, session, notifications), the after-commit publish through Redis, and the socket write.
p50 / p99 over every (text, client) pair.

Run by hand (production mode, its own database, dropped at the end)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/qs_inbox_live REDIS_URL=redis://127.0.0.1:6379/9 \\
    SECRET_KEY=x QUICKSEND_ENCRYPTION_KEYS=... \\
    python bench/live_push.py [--clients 100 --texts 50 --workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Own Celery queue and cache prefix, so nothing else queued in this Redis database is mixed in.
os.environ["PYTEST_XDIST_WORKER"] = "bench"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--texts", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--port", type=int, default=8461)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "bench"))
    from benchdb import drop_database, ensure_database

    url = os.environ["DATABASE_URL"]
    ensure_database(url)
    os.environ.update(
        {"ALLOWED_HOSTS": "127.0.0.1,localhost", "PUBLIC_BASE_URL": f"http://127.0.0.1:{args.port}"}
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quicksend.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from messaging.inbox import actions as inbox
    from messaging.models import PhoneNumber, TwilioAccount
    from tenancy.models import Membership, Organization, Role
    from tests.factories_messaging import store_inbound
    from tests.sessions import session_cookie_for

    call_command("migrate", verbosity=0)
    org, _ = Organization.objects.get_or_create(slug="live-bench", defaults={"name": "Live bench"})
    User = get_user_model()
    users = []
    for i in range(args.clients):
        user, _ = User.objects.get_or_create(username=f"live-{i}")
        Membership.objects.get_or_create(user=user, organization=org, defaults={"role": Role.ADMIN})
        users.append(user)
    account, created = TwilioAccount.objects.get_or_create(
        organization=org, account_sid="AC" + "c" * 32, defaults={"status": "valid"}
    )
    if created:
        account.set_auth_token("y" * 32)
        account.save()
    number, _ = PhoneNumber.objects.get_or_create(
        organization=org, account=account, sid="PN" + "c" * 32, defaults={"phone_number": "+14155550999"}
    )
    customer = "+12025550999"
    conversation = store_inbound(number, customer, "first").conversation
    if conversation.owner_id is None:
        inbox.do_accept_conversation(conversation, users[0])  # the owner is active: one notification per text

    cookies = [session_cookie_for(u, org) for u in users]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "quicksend.asgi:application", "--host", "127.0.0.1"]
            + ["--port", str(args.port), "--lifespan", "off", "--log-level", "warning", "--no-access-log"]
            + ["--workers", str(args.workers), "--loop", "uvloop", "--http", "httptools"],
            cwd=ROOT,
            env=env,
        ),
        subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "quicksend", "worker", "--pool", "solo"]
            + ["--loglevel", "WARNING", "-Q", "quicksendbench", "--without-gossip", "--without-mingle"],
            cwd=ROOT,
            env=env,
        ),
    ]
    webhook = Webhook(account.account_sid, "y" * 32, number.phone_number, customer, args.port)
    from machine import Phase

    try:
        with Phase() as phase:
            latencies = asyncio.run(run_clients(args, cookies, conversation.pk, webhook))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=15)
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    print(f"clients={args.clients} texts={args.texts} frames={len(latencies)} ({phase.describe()})")
    print(
        f"signed webhook sent → frame at the client: p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"max {latencies[-1]:.1f} ms"
    )
    if not args.keep:
        from django.db import connections

        connections.close_all()
        drop_database(url)


class Webhook:
    """Signed inbound-text webhooks, exactly as Twilio posts them (form, X-Twilio-Signature over the URL)."""

    def __init__(self, account_sid: str, token: str, to: str, customer: str, port: int):
        from twilio.request_validator import RequestValidator

        self.account_sid, self.to, self.customer, self.port = account_sid, to, customer, port
        self.validator = RequestValidator(token)
        self.url = f"http://127.0.0.1:{port}/api/incoming-sms"

    def request(self, body: str) -> bytes:
        import secrets
        from urllib.parse import urlencode

        sid = "SM" + secrets.token_hex(16)
        params = {
            "MessageSid": sid,
            "SmsSid": sid,
            "AccountSid": self.account_sid,
            "From": self.customer,
            "To": self.to,
            "Body": body,
            "NumMedia": "0",
            "NumSegments": "1",
            "ApiVersion": "2010-04-01",
        }
        form = urlencode(params).encode()
        head = (
            f"POST /api/incoming-sms HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"X-Twilio-Signature: {self.validator.compute_signature(self.url, params)}\r\n"
            f"Content-Length: {len(form)}\r\nConnection: close\r\n\r\n"
        )
        return head.encode() + form

    async def post(self, raw: bytes) -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(raw)
        status = int((await reader.readline()).split()[1])
        writer.close()
        return status


async def run_clients(args, cookies, conversation_id, webhook: Webhook) -> list[float]:
    import websockets

    base = f"ws://127.0.0.1:{args.port}/ws/"
    origin = f"http://127.0.0.1:{args.port}"
    for _ in range(150):  # wait for uvicorn
        try:
            async with websockets.connect(
                base, additional_headers={"Cookie": f"sessionid={cookies[0]}"}, origin=origin
            ):
                break
        except OSError:
            await asyncio.sleep(0.2)
    sent_at: dict[str, float] = {}
    arrivals: dict[tuple[int, str], float] = {}  # (socket, text) → first arrival
    sockets = []
    for key in cookies:
        ws = await websockets.connect(base, additional_headers={"Cookie": f"sessionid={key}"}, origin=origin)
        assert json.loads(await ws.recv())["type"] == "hello"
        await ws.send(json.dumps({"action": "subscribe", "kind": "conv", "id": conversation_id}))
        answer = json.loads(await ws.recv())
        assert answer["type"] == "subscribed", answer
        sockets.append(ws)

    async def listen(index, ws):
        async for raw in ws:
            at = time.perf_counter()
            data = json.loads(raw)
            for frame in data if isinstance(data, list) else [data]:  # a batch's events come as one array
                if frame["type"] == "message.created":  # the owner's socket also gets it on its user group
                    arrivals.setdefault((index, frame["message"]["body"]), at)

    listeners = [asyncio.create_task(listen(i, ws)) for i, ws in enumerate(sockets)]
    # Warm-up text (first connections, first queries): not counted.
    await webhook.post(webhook.request("warm-up"))
    await asyncio.sleep(2)
    for i in range(args.texts):
        body = f"text {i}"
        raw = webhook.request(body)
        sent_at[body] = time.perf_counter()
        status = await webhook.post(raw)
        assert status == 200, status
        await asyncio.sleep(0.3)
    deadline = time.perf_counter() + 30
    while len([k for k in arrivals if k[1] in sent_at]) < args.texts * len(sockets):
        if time.perf_counter() > deadline:
            break
        await asyncio.sleep(0.05)
    for task in listeners:
        task.cancel()
    for ws in sockets:
        await ws.close()
    counted = {k: at for k, at in arrivals.items() if k[1] in sent_at}
    missing = args.texts * len(sockets) - len(counted)
    if missing:
        print(f"WARNING: {missing} frames did not arrive")
    first: dict[str, float] = {}
    for (_i, body), at in counted.items():
        first[body] = min(first.get(body, at), at)
    firsts = sorted((at - sent_at[body]) * 1000 for body, at in first.items())
    if firsts:
        print(
            f"first client's frame per text: p50 {statistics.median(firsts):.1f} ms, max {firsts[-1]:.1f} ms"
        )
    return [(at - sent_at[body]) * 1000 for (_i, body), at in counted.items()]


if __name__ == "__main__":
    main()
