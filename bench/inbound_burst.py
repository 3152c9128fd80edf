"""Benchmark: a burst of inbound texts (35,000 in 60 s by default) on the production stack, until every text
is processed, with the live push latency measured throughout.

Production mode only (PostgreSQL, Redis). A fresh organization with one number and ``--members`` members;
the production ASGI server (uvicorn, Redis channel layer) with one WebSocket client per member (session
cookie; each hears every text of the unowned conversations on its own group, as a member watching the
inbox does); ``--workers`` Celery worker processes (solo pool). The texts are stored the way the webhook
writer stores them (``ingest.store_events``, in small batches at a steady pace over ``--feed-seconds``,
each batch waking a drain as a webhook does), from ``--customers`` customer numbers. The webhooks' own
cost is ``bench/ingest_webhooks.py``'s; here the clock is on processing and pushing.

Prints: the time until every text is processed (from the first stored), texts per second, and for the
``message.created`` frames the clients got: the time from the message being stored (its ``created_at``,
set by the worker) to the frame at the client, p50 / p99 / max, and the time from the webhook's event being
stored to the frame (includes waiting in the backlog). Then CPU per text of the workers, of this database's
PostgreSQL backends and of the ASGI server, the load average and the CPU stolen by the hypervisor.

    SECRET_KEY=x QUICKSEND_ENCRYPTION_KEYS=3q2Bpd0mRkpq6GaoBGHZOXHU4_lpr6wwzoR4QgP5G6s= \
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/qs_burst_bench REDIS_URL=redis://127.0.0.1:6379/9 \
    python bench/inbound_burst.py --events 35000 --feed-seconds 60 --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ["PYTEST_XDIST_WORKER"] = "burstbench"


def feeder(line, args, stored_at: dict[int, float], done: threading.Event) -> None:
    """Store the texts at a steady pace, as the webhook writer would, from its own database connection."""
    from django.db import connection

    from messaging.twilio import ingest
    from messaging.twilio.signatures import VerifiedAccount

    org, account, number = line
    verified = VerifiedAccount(account.pk, org.pk, account.account_sid)
    rng = random.Random(5)
    per_tick = max(1, round(args.events / (args.feed_seconds * 10)))
    started = time.monotonic()
    i = 0
    while i < args.events:
        batch = []
        for _ in range(min(per_tick, args.events - i)):
            sid = "SM" + secrets.token_hex(16)
            form = {
                "MessageSid": sid,
                "SmsSid": sid,
                "AccountSid": account.account_sid,
                "From": f"+1310{5550000 + rng.randrange(args.customers)}",
                "To": number.phone_number,
                "Body": f"burst {i}",
                "NumMedia": "0",
                "NumSegments": "1",
            }
            batch.append(ingest.inbound_event(verified, form))
            i += 1
        ingest.store_events(batch)
        now = time.time()
        for n in range(i - len(batch), i):
            stored_at[n] = now
        ahead = started + i / (per_tick * 10) - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    connection.close()
    done.set()


async def listen(port: int, cookies: list[str], frames: list, stop: asyncio.Event, connected) -> None:
    import websockets

    base, origin = f"ws://127.0.0.1:{port}/ws/", f"http://127.0.0.1:{port}"
    sockets = []
    for _ in range(300):  # wait for uvicorn (a loaded host starts it slowly)
        try:
            async with websockets.connect(
                base, additional_headers={"Cookie": f"sessionid={cookies[0]}"}, origin=origin
            ):
                break
        except OSError:
            await asyncio.sleep(0.2)
    for key in cookies:
        ws = await websockets.connect(
            base, additional_headers={"Cookie": f"sessionid={key}"}, origin=origin, max_queue=None
        )
        assert json.loads(await ws.recv())["type"] == "hello"
        sockets.append(ws)

    async def one(ws):
        async for raw in ws:
            at = time.time()
            data = json.loads(raw)
            for frame in data if isinstance(data, list) else [data]:  # a batch's events come as one array
                if frame["type"] == "message.created":
                    frames.append((at, frame["message"]["created_at"], frame["message"]["body"]))

    tasks = [asyncio.create_task(one(ws)) for ws in sockets]
    connected.set()
    await stop.wait()
    for task in tasks:
        task.cancel()
    for ws in sockets:
        await ws.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=35000)
    parser.add_argument("--feed-seconds", type=float, default=60)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--members", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1200)
    parser.add_argument("--port", type=int, default=8471)
    parser.add_argument(
        "--sweep", type=int, default=10, help="run the drain sweep every N seconds, as beat does (0: never)"
    )
    args = parser.parse_args()
    from benchdb import bench_line, ensure_database

    ensure_database(os.environ["DATABASE_URL"])
    os.environ.update(
        {"ALLOWED_HOSTS": "127.0.0.1,localhost", "PUBLIC_BASE_URL": f"http://127.0.0.1:{args.port}"}
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quicksend.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from machine import Phase
    from processing_rate import cpu_seconds, database_backends, worker_pids

    from messaging.models import InboundEvent
    from messaging.twilio import ingest
    from quicksend.celery import app
    from tenancy.models import Membership, Role
    from tests.sessions import session_cookie_for

    call_command("migrate", verbosity=0)
    InboundEvent.objects.filter(processed_at__isnull=True).update(attempts=ingest.MAX_ATTEMPTS)
    org, account, number, _ = bench_line("burst")
    User = get_user_model()
    cookies = []
    for i in range(args.members):
        user = User.objects.create(username=f"{org.slug}-member-{i}")
        Membership.objects.create(user=user, organization=org, role=Role.ADMIN if i == 0 else Role.AGENT)
        cookies.append(session_cookie_for(user, org))
    app.control.purge()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    logs = ROOT / "var"
    logs.mkdir(exist_ok=True)
    log = open(logs / "bench-burst.log", "ab")  # noqa: SIM115
    web = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "quicksend.asgi:application", "--host", "127.0.0.1"]
        + ["--port", str(args.port), "--lifespan", "off", "--log-level", "warning", "--no-access-log"]
        + ["--workers", "1", "--loop", "uvloop", "--http", "httptools"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    worker_cmd = [sys.executable, "-m", "celery", "-A", "quicksend", "worker", "--pool", "solo"]
    worker_cmd += [
        "--loglevel",
        "WARNING",
        "-Q",
        "quicksendburstbench",
        "--without-gossip",
        "--without-mingle",
    ]
    workers = [
        subprocess.Popen(
            [*worker_cmd, "-n", f"burst{i}@%h"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        for i in range(args.workers)
    ]
    frames: list = []
    stored_at: dict[int, float] = {}
    pending = InboundEvent.objects.filter(organization_id=org.pk, processed_at__isnull=True)
    try:
        time.sleep(8)  # the server and the workers start
        loop = asyncio.new_event_loop()
        stop = asyncio.Event()
        connected = threading.Event()
        listener = threading.Thread(
            target=lambda: loop.run_until_complete(listen(args.port, cookies, frames, stop, connected)),
            daemon=True,
        )
        listener.start()
        deadline = time.monotonic() + 90
        while not connected.is_set() and time.monotonic() < deadline:
            time.sleep(0.2)  # every client connected before the first text
        time.sleep(1)
        dbname = connection.settings_dict["NAME"]
        pids = worker_pids(workers) + [web.pid] + database_backends(dbname)
        start_cpu = {p: cpu_seconds(p) for p in pids}
        fed = threading.Event()
        with Phase() as phase:
            started = time.monotonic()
            threading.Thread(
                target=feeder, args=((org, account, number), args, stored_at, fed), daemon=True
            ).start()
            ticks = 0
            while time.monotonic() - started < args.timeout:
                time.sleep(1)
                ticks += 1
                if fed.is_set() and not pending.exists():
                    break
                if args.sweep and ticks % args.sweep == 0:
                    ingest.sweep()  # the periodic job beat runs (every 60 s in production)
            elapsed = time.monotonic() - started
        time.sleep(2)  # the last frames
        loop.call_soon_threadsafe(stop.set)
        backends = set(database_backends(dbname)) | set(start_cpu)
        used = {
            "workers": sum(cpu_seconds(p) - start_cpu.get(p, 0) for p in set(worker_pids(workers))),
            "postgresql": sum(
                max(0.0, cpu_seconds(p) - start_cpu.get(p, 0))
                for p in backends - {web.pid} - set(worker_pids(workers))
            ),
            "asgi server": cpu_seconds(web.pid) - start_cpu.get(web.pid, 0),
        }
        left = pending.count()
    finally:
        for proc in [web, *workers]:
            proc.terminate()
        for proc in [web, *workers]:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    done = args.events - left
    stored_latency, backlog_latency = [], []
    for at, created, body in frames:
        created_at = datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
        stored_latency.append((at - created_at) * 1000)
        index = int(body.split()[-1])
        if index in stored_at:
            backlog_latency.append((at - stored_at[index]) * 1000)

    def spread(values: list[float]) -> str:
        if not values:
            return "no frames"
        values.sort()
        p99 = values[int(0.99 * (len(values) - 1))]
        return f"p50 {statistics.median(values):.0f} ms, p99 {p99:.0f} ms, max {values[-1]:.0f} ms"

    print(
        f"burst: {done} of {args.events} texts processed in {elapsed:.1f} s "
        f"({done / elapsed:.1f}/s; fed over "
        f"{args.feed_seconds:.0f} s), {args.workers} solo workers; {phase.describe()}",
        flush=True,
    )
    print(f"frames: {len(frames)} message.created to {args.members} clients")
    print(f"  message stored → frame at the client: {spread(stored_latency)}")
    print(f"  webhook stored → frame at the client (with the backlog): {spread(backlog_latency)}")
    per = 1000 / done if done else 0
    print("  CPU per text: " + ", ".join(f"{role} {seconds * per:.2f} ms" for role, seconds in used.items()))
    pending.update(attempts=ingest.MAX_ATTEMPTS)


if __name__ == "__main__":
    main()
