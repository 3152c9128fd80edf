"""Benchmark: how fast stored inbound webhooks become messages, with 1, 2, … Celery worker processes.

Production mode only (PostgreSQL, Redis). For each worker count: a fresh organization with one number, a
backlog of ``--events`` stored inbound events (``ingest.store_events``, as the webhook writer stores them,
from 2,000 customers; stored with the drain flag taken, so nothing is queued yet), ``--workers N`` solo
Celery worker processes, then ONE drain queued (``schedule_drain``), as the periodic sweep or a lone
webhook leaves a backlog; the drains must spread over the workers by themselves. Prints
the inbound events processed per second over ``--seconds`` (or until the backlog is gone), with the
machine's load and hypervisor steal.

    SECRET_KEY=x QUICKSEND_ENCRYPTION_KEYS=3q2Bpd0mRkpq6GaoBGHZOXHU4_lpr6wwzoR4QgP5G6s= \
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/qs_drain_bench REDIS_URL=redis://127.0.0.1:6379/11 \
    python bench/drain_workers.py --workers 1 2 --events 4000 --seconds 60
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
os.environ["PYTEST_XDIST_WORKER"] = "drainbench"


def backlog(events: int) -> int:
    """A fresh organization with ``events`` stored, unprocessed inbound webhooks; its id."""
    from benchdb import bench_line

    from messaging.twilio import ingest
    from messaging.twilio.signatures import VerifiedAccount

    org, account, number, _ = bench_line("drain")
    verified = VerifiedAccount(account.pk, org.pk, account.account_sid)
    rng = random.Random(3)
    batch = []
    for i in range(events):
        sid = "SM" + secrets.token_hex(16)
        form = {
            "MessageSid": sid,
            "SmsSid": sid,
            "AccountSid": account.account_sid,
            "From": f"+1310{5550000 + rng.randrange(2000)}",
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
    return org.pk


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        raise SystemExit("production mode only: set DATABASE_URL and REDIS_URL")
    from benchdb import ensure_database

    ensure_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command
    from machine import Phase

    from messaging.models import InboundEvent
    from messaging.twilio import ingest
    from quicksend.celery import app

    call_command("migrate", verbosity=0)
    worker_cmd = [sys.executable, "-m", "celery", "-A", "quicksend", "worker", "--pool", "solo"]
    queue = "quicksend" + os.environ["PYTEST_XDIST_WORKER"]
    worker_cmd += ["--loglevel", "WARNING", "-Q", queue, "--without-gossip", "--without-mingle"]
    logs = ROOT / "var"
    logs.mkdir(exist_ok=True)
    for count in args.workers:
        # Earlier runs' leftovers must not be drained during this one.
        InboundEvent.objects.filter(processed_at__isnull=True).update(attempts=ingest.MAX_ATTEMPTS)
        # The backlog is stored with the drain flag taken, so storing it queues nothing; the queue is emptied.
        ingest.cache.set(ingest._pending_key("inbound"), 1, timeout=None)
        org_id = backlog(args.events)
        app.control.purge()
        pending = InboundEvent.objects.filter(organization_id=org_id, processed_at__isnull=True)
        procs = []
        with open(logs / "bench-drain-celery.log", "ab") as log:
            for i in range(count):
                cmd = [*worker_cmd, "-n", f"drain{i}@%h"]
                procs.append(subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))
        try:
            time.sleep(8)  # the workers connect to the broker
            ingest.cache.delete(ingest._pending_key("inbound"))
            before = pending.count()
            with Phase() as phase:
                started = time.monotonic()
                ingest.schedule_drain("inbound")
                while time.monotonic() - started < args.seconds and pending.exists():
                    time.sleep(1)
                elapsed = time.monotonic() - started
            done = before - pending.count()
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        print(
            f"workers {count}: {done} of {before} inbound events processed in {elapsed:.0f} s = "
            f"{done / elapsed:.1f}/s ({phase.describe()})",
            flush=True,
        )
        InboundEvent.objects.filter(organization_id=org_id, processed_at__isnull=True).update(
            attempts=ingest.MAX_ATTEMPTS
        )


if __name__ == "__main__":
    main()
