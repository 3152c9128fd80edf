"""Live push latency: 100 WebSocket clients connected through the production ASGI server (uvicorn, Redis
channel layer), all subscribed to one conversation; for each inbound text, the time from "the inbound text
is being stored" (just before the transaction that stores it; its after-commit ``inbound_message_stored``
receiver builds the events) to the ``message.created`` frame at each client. p50 / p99 over every
(text, client) pair.

RECEIVE's signed webhook is not on this branch, so the clock starts at the store + signal (what the webhook
path does after verifying the signature), not at the HTTP request. Run by hand (production mode, its own
database, dropped at the end)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/qs_inbox_live REDIS_URL=redis://127.0.0.1:6379/9 \\
    SECRET_KEY=x QUICKSEND_ENCRYPTION_KEYS=... ALLOWED_HOSTS=127.0.0.1 PUBLIC_BASE_URL=http://127.0.0.1 \\
    python bench/live_push.py [--clients 100 --texts 30]
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--texts", type=int, default=30)
    parser.add_argument("--port", type=int, default=8461)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "bench"))
    from inbox_queries import drop_database, ensure_database

    url = os.environ["DATABASE_URL"]
    ensure_database(url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quicksend.settings")
    import django

    django.setup()
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    from messaging.models import PhoneNumber, TwilioAccount
    from messaging.services import inbox
    from tenancy.models import Membership, Organization, Role
    from tests.factories_messaging import store_inbound

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

    def cookie(user) -> str:
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session["org_id"] = org.pk
        session.save()
        return session.session_key

    cookies = [cookie(u) for u in users]
    env = dict(
        os.environ, ALLOWED_HOSTS="127.0.0.1,localhost", PUBLIC_BASE_URL=f"http://127.0.0.1:{args.port}"
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "quicksend.asgi:application", "--host", "127.0.0.1"]
        + ["--port", str(args.port), "--lifespan", "off", "--log-level", "warning"],
        cwd=ROOT,
        env=env,
    )
    try:
        latencies = asyncio.run(run_clients(args, cookies, conversation.pk, number, customer, store_inbound))
    finally:
        server.terminate()
        server.wait(timeout=10)
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    print(f"clients={args.clients} texts={args.texts} frames={len(latencies)}")
    print(f"store → frame: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {latencies[-1]:.1f} ms")
    if not args.keep:
        from django.db import connections

        connections.close_all()
        drop_database(url)


async def run_clients(args, cookies, conversation_id, number, customer, store_inbound) -> list[float]:
    import websockets

    base = f"ws://127.0.0.1:{args.port}/ws/"
    origin = f"http://127.0.0.1:{args.port}"
    for _ in range(100):  # wait for uvicorn
        try:
            async with websockets.connect(
                base, additional_headers={"Cookie": f"sessionid={cookies[0]}"}, origin=origin
            ):
                break
        except OSError:
            await asyncio.sleep(0.2)
    sent_at: dict[int, float] = {}
    stored_in: list[float] = []
    arrivals: dict[tuple[int, int], float] = {}  # (socket, message id) → first arrival
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
            frame = json.loads(raw)
            if frame["type"] == "message.created":  # the owner's socket also gets it on its user group
                arrivals.setdefault((index, frame["message"]["id"]), at)

    listeners = [asyncio.create_task(listen(i, ws)) for i, ws in enumerate(sockets)]

    def store(i: int) -> None:
        t0 = time.perf_counter()
        message = store_inbound(number, customer, f"text {i}")
        stored_in.append((time.perf_counter() - t0) * 1000)
        sent_at[message.pk] = t0

    for i in range(args.texts):
        await asyncio.to_thread(store, i)
        await asyncio.sleep(0.05)
    deadline = time.perf_counter() + 10
    while len(arrivals) < args.texts * len(sockets) and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    for task in listeners:
        task.cancel()
    for ws in sockets:
        await ws.close()
    missing = args.texts * len(sockets) - len(arrivals)
    if missing:
        print(f"WARNING: {missing} frames did not arrive")
    stored_in.sort()
    print(f"store + receivers + publish (in the storing process): p50 {statistics.median(stored_in):.1f} ms")
    first: dict[int, float] = {}
    for (_i, mid), at in arrivals.items():
        if mid in sent_at:
            first[mid] = min(first.get(mid, at), at)
    firsts = sorted((at - sent_at[mid]) * 1000 for mid, at in first.items())
    if firsts:
        print(
            f"first client's frame per text: p50 {statistics.median(firsts):.1f} ms, max {firsts[-1]:.1f} ms"
        )
    return [(at - sent_at[mid]) * 1000 for (_i, mid), at in arrivals.items() if mid in sent_at]


if __name__ == "__main__":
    main()
