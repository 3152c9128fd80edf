"""Benchmark: how fast stored webhook events are processed by Celery workers (inbound texts or status
callbacks), with the CPU each process role spends per event.

Production mode only (PostgreSQL, Redis). A fresh organization with one number and ``--members`` active
members (so every inbound text raises notifications, unread counts and live events to them, as in a real
inbox), then a backlog of ``--events`` stored events, written the way the webhook writer writes them
(``ingest.store_events``), with the drain flag taken so nothing is queued yet:

- ``--kind inbound``: texts from ``--customers`` customer numbers;
- ``--kind status``: ``sent`` then ``delivered`` callbacks for ``--events / 2`` outbound messages (with our
  message id, as the callback URL carries it), in the order Twilio posts them.

Then ``--workers`` Celery worker processes (``--pool solo``, or ``--concurrency N`` prefork children each)
start, ONE drain is queued (as a lone webhook or the periodic sweep leaves a backlog) and the script waits
until the backlog is gone (at most ``--seconds``). It prints events per second, the CPU time per event of
the Celery workers it started and of the PostgreSQL backends of its own database (``/proc/<pid>/stat``;
other databases on the same server are not counted), the load average and the share of CPU stolen by the
hypervisor.

    SECRET_KEY=x QUICKSEND_ENCRYPTION_KEYS=3q2Bpd0mRkpq6GaoBGHZOXHU4_lpr6wwzoR4QgP5G6s= \
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/qs_processing_bench REDIS_URL=redis://127.0.0.1:6379/9 \
    python bench/processing_rate.py --kind inbound --events 6000 --workers 2

The same script runs unchanged against older code (copy it into that checkout's ``bench/``): it only uses
``ingest.store_events``, ``ingest.inbound_event``, ``ingest.Event`` and the drain flag.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quicksend.settings")
os.environ.setdefault("PUBLIC_BASE_URL", "http://127.0.0.1")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1")
# Own Celery queue and cache prefix, so nothing else queued in this Redis database is mixed in.
os.environ["PYTEST_XDIST_WORKER"] = "procbench"

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and of its children that have exited (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(v) for v in fields[11:15]) / TICKS


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(v) for v in fh.read().split()]
    except OSError:
        return []


def worker_pids(procs) -> list[int]:
    pids = []
    for proc in procs:
        pids.append(proc.pid)
        pids += children(proc.pid)
    return pids


def database_backends(name: str) -> list[int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [name]
        )
        return [row[0] for row in cursor.fetchall()]


def make_members(org, count: int) -> None:
    from django.contrib.auth import get_user_model

    from tenancy.models import Membership, Role

    User = get_user_model()
    for i in range(count):
        user = User.objects.create(username=f"{org.slug}-agent-{i}")
        Membership.objects.create(user=user, organization=org, role=Role.ADMIN if i == 0 else Role.AGENT)


def inbound_backlog(account, number, org, events: int, customers: int) -> None:
    from messaging.twilio import ingest
    from messaging.twilio.signatures import VerifiedAccount

    verified = VerifiedAccount(account.pk, org.pk, account.account_sid)
    rng = random.Random(3)
    batch = []
    for i in range(events):
        sid = "SM" + secrets.token_hex(16)
        form = {
            "MessageSid": sid,
            "SmsSid": sid,
            "AccountSid": account.account_sid,
            "From": f"+1310{5550000 + rng.randrange(customers)}",
            "To": number.phone_number,
            "Body": f"Is the flat on Elm Street still available? ({i})",
            "NumMedia": "0",
            "NumSegments": "1",
        }
        batch.append(ingest.inbound_event(verified, form))
        if len(batch) == 200:
            ingest.store_events(batch)
            batch = []
    ingest.store_events(batch)


def status_backlog(account, number, org, events: int, customers: int) -> None:
    from django.db import connection
    from django.utils import timezone

    from messaging.models import STATUS_RANK, Conversation, Message
    from messaging.twilio import ingest

    conversations = Conversation.objects.bulk_create(
        [
            Conversation(organization=org, phone_number=number, customer_number=f"+1202{7000000 + i}")
            for i in range(min(customers, 500))
        ]
    )
    messages = []
    for start in range(0, events // 2, 5000):
        messages += Message.objects.bulk_create(
            [
                Message(
                    organization=org,
                    conversation=conversations[i % len(conversations)],
                    account=account,
                    direction="outbound",
                    source="api",
                    status="queued",
                    status_rank=STATUS_RANK["queued"],
                    sid="SM" + secrets.token_hex(16),
                    from_number=number.phone_number,
                    to_number=conversations[i % len(conversations)].customer_number,
                    body="Your appointment is confirmed.",
                )
                for i in range(start, min(events // 2, start + 5000))
            ]
        )
    batch = []
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    for message in messages:
        for status in ("sent", "delivered"):
            row = (org.pk, account.pk, message.pk, message.sid, status, None, now)
            batch.append(ingest.Event("status", row))
        if len(batch) >= 400:
            ingest.store_events(batch)
            batch = []
    ingest.store_events(batch)


def _wait_for_empty_queue(started: float, seconds: float) -> float | None:
    """Seconds from ``started`` until this bench's Celery queue is empty and no message is unacked (held by
    a worker) for a second; None after ``seconds``."""
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    queue_name = "quicksend" + os.environ["PYTEST_XDIST_WORKER"]
    quiet_since = None
    while time.monotonic() - started < seconds:
        busy = client.llen(queue_name) + client.hlen("unacked")
        now = time.monotonic()
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= 1.0:
            return quiet_since - started
        time.sleep(0.1)
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=["inbound", "status"], default="inbound")
    parser.add_argument("--events", type=int, default=6000)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--concurrency", type=int, default=0, help="prefork children per worker (0: solo)")
    parser.add_argument("--seconds", type=float, default=300)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        raise SystemExit("production mode only: set DATABASE_URL and REDIS_URL")
    from benchdb import bench_line, ensure_database

    ensure_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from machine import Phase

    from messaging.models import InboundEvent, StatusEvent
    from messaging.twilio import ingest
    from quicksend.celery import app

    call_command("migrate", verbosity=0)
    # Earlier runs' leftovers must not be processed during this one.
    InboundEvent.objects.filter(processed_at__isnull=True).update(attempts=ingest.MAX_ATTEMPTS)
    StatusEvent.objects.all().delete()
    ingest.cache.set(ingest._pending_key(args.kind), 1, timeout=None)
    org, account, number, _ = bench_line("proc")
    make_members(org, args.members)
    if args.kind == "inbound":
        inbound_backlog(account, number, org, args.events, args.customers)
        pending = InboundEvent.objects.filter(organization_id=org.pk, processed_at__isnull=True)
    else:
        status_backlog(account, number, org, args.events, args.customers)
        pending = StatusEvent.objects.filter(organization_id=org.pk)
    app.control.purge()

    worker_cmd = [sys.executable, "-m", "celery", "-A", "quicksend", "worker", "--loglevel", "WARNING"]
    worker_cmd += [
        "-Q",
        "quicksend" + os.environ["PYTEST_XDIST_WORKER"],
        "--without-gossip",
        "--without-mingle",
    ]
    if args.concurrency:
        worker_cmd += ["--pool", "prefork", "--concurrency", str(args.concurrency)]
    else:
        worker_cmd += ["--pool", "solo"]
    logs = ROOT / "var"
    logs.mkdir(exist_ok=True)
    procs = []
    with open(logs / "bench-processing-celery.log", "ab") as log:
        for i in range(args.workers):
            cmd = [*worker_cmd, "-n", f"proc{i}@%h"]
            procs.append(subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))
    dbname = connection.settings_dict["NAME"]
    try:
        time.sleep(8)  # the workers connect to the broker
        before = pending.count()
        ingest.cache.delete(ingest._pending_key(args.kind))
        workers = worker_pids(procs)
        backends = database_backends(dbname)
        cpu_start = {pid: cpu_seconds(pid) for pid in workers + backends}
        with Phase() as phase:
            started = time.monotonic()
            ingest.schedule_drain(args.kind)
            while time.monotonic() - started < args.seconds and pending.exists():
                time.sleep(0.5)
            elapsed = time.monotonic() - started
            backends = set(backends) | set(database_backends(dbname))
            workers = set(workers) | set(worker_pids(procs))
            worker_cpu = sum(cpu_seconds(p) - cpu_start.get(p, 0.0) for p in workers)
            db_cpu = sum(max(0.0, cpu_seconds(p) - cpu_start.get(p, 0.0)) for p in backends)
            done = before - pending.count()
            # What the texts queued for other features (automations, campaigns) runs on the same workers:
            # wait until the queue is empty and no task is in hand, and count that too.
            settled = _wait_for_empty_queue(started, args.seconds)
            worker_cpu_all = sum(cpu_seconds(p) - cpu_start.get(p, 0.0) for p in workers)
            db_cpu_all = sum(max(0.0, cpu_seconds(p) - cpu_start.get(p, 0.0)) for p in backends)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    per = 1000 / done if done else 0
    if settled is not None:
        print(
            f"{args.kind}, with the tasks the events queued for other features: all done in {settled:.1f} s "
            f"= "
            f"{done / settled:.1f}/s; CPU per event: Celery workers {worker_cpu_all * per:.2f} ms, "
            f"PostgreSQL {db_cpu_all * per:.2f} ms"
        )
    else:
        print(f"{args.kind}: the follow-up tasks were not done within {args.seconds:.0f} s")
    shape = f"{args.workers} x " + (f"prefork {args.concurrency}" if args.concurrency else "solo")
    print(
        f"{args.kind}: {done} of {before} events processed in {elapsed:.1f} s = {done / elapsed:.1f}/s "
        f"(workers {shape}); CPU per event: Celery workers {worker_cpu * per:.2f} ms, "
        f"PostgreSQL (this database's backends) {db_cpu * per:.2f} ms; {phase.describe()}",
        flush=True,
    )
    if args.kind == "inbound":
        pending.update(attempts=ingest.MAX_ATTEMPTS)
    else:
        pending.delete()


if __name__ == "__main__":
    main()
