"""Benchmark: import a generated CSV of leads (default 100,000 rows, ~1% bad) the way the worker does.

Run in production mode (PostgreSQL), e.g.::

    SECRET_KEY=x QUICKSEND_ENCRYPTION_KEYS=... PUBLIC_BASE_URL=http://localhost ALLOWED_HOSTS=localhost \
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/qs_crm REDIS_URL=redis://127.0.0.1:6379/1 \
    python bench/crm_import.py --rows 100000

It migrates the database, creates a fresh organization, writes the CSV to a temporary file, then uploads it
and runs the import task in this process (Celery eager for this run only, so the timing is the task's own
work, not queue latency). It prints the duration, rows per second, the import counts, and memory: the
process's peak RSS before and after the import (resource.getrusage), and with ``--tracemalloc`` the peak of
Python allocations during the import (slower; use it for memory, not for time).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quicksend.settings")


def generate(path: Path, rows: int, bad_every: int) -> tuple[int, int]:
    """Write the CSV; return (rows, bad rows)."""
    rng = random.Random(42)
    first = ["Ann", "Bob", "Chen", "Dana", "Eve", "Femi", "Gus", "Hana", "Ivan", "Zoë", "José", "Ørjan"]
    last = ["Lee", "Ray", "Wei", "Shah", "Lopez", "Okafor", "Berg", "Smith", "Müller", "Nguyen"]
    bad = 0
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["First Name", "Last Name", "Mobile", "Email", "Company", "External ID", "Lead Source"]
        )
        for i in range(rows):
            phone = f"(415) {200 + i // 10000:03d}-{i % 10000:04d}"
            fn, ln = rng.choice(first), rng.choice(last)
            if bad_every and i % bad_every == bad_every - 1:
                bad += 1
                if (i // bad_every) % 2:
                    phone = "555-12"
                else:
                    fn = ln = ""
            writer.writerow(
                [fn, ln, phone, f"user{i}@example.com", f"Company {i % 500}", f"ext-{i}", "bench"]
            )
    return rows, bad


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--bad-every", type=int, default=100, help="one bad row every N rows")
    parser.add_argument("--tracemalloc", action="store_true")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.core.files import File
    from django.core.management import call_command

    from crm import imports
    from crm.models import ImportJob, Lead, RecordPhone
    from quicksend.celery import app
    from tenancy.models import Membership, Organization, Role
    from tests.factories import UserFactory

    call_command("migrate", verbosity=0)
    app.conf.task_always_eager = True  # this run only: the task body runs here, after the commit
    stamp = str(int(time.time()))
    org = Organization.objects.create(name=f"Bench {stamp}", slug=f"bench-{stamp}", seat_limit=5)
    user = UserFactory(username=f"bench-{stamp}")
    Membership.objects.create(user=user, organization=org, role=Role.ADMIN)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "leads.csv"
        t0 = time.perf_counter()
        rows, bad = generate(path, args.rows, args.bad_every)
        size = path.stat().st_size
        took = time.perf_counter() - t0
        print(f"generated {rows:,} rows ({bad:,} bad), {size / 1_048_576:.1f} MB in {took:.1f} s")
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if args.tracemalloc:
            tracemalloc.start()
        start = time.perf_counter()
        with open(path, "rb") as fh:
            upload = File(fh, name="leads.csv")
            upload.size = size
            job, _ = imports.do_create_import_job(org, user, "lead", upload)
        imports.do_start_import(job, user, duplicate_policy="skip", match_key="phone")
        duration = time.perf_counter() - start
        traced_peak = tracemalloc.get_traced_memory()[1] if args.tracemalloc else None
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    job = ImportJob.objects.get(pk=job.pk)
    print(f"database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}")
    print(
        f"status {job.status}: {job.imported:,} imported, {job.updated:,} updated, {job.skipped:,} skipped, "
        f"{job.rejected:,} rejected {('(' + job.error + ')') if job.error else ''}"
    )
    print(f"duration: {duration:.1f} s ({rows / duration:,.0f} rows/s)")
    print(
        f"peak RSS: {rss_before / 1024:.0f} MB before the import, {rss_after / 1024:.0f} MB after "
        f"(+{(rss_after - rss_before) / 1024:.0f} MB)"
    )
    if traced_peak is not None:
        print(f"tracemalloc peak during the import: {traced_peak / 1_048_576:.1f} MB")
    assert Lead.objects.filter(organization=org).count() == job.imported
    assert RecordPhone.objects.filter(organization=org).count() == job.imported
    # Leave the database as we found it.
    Lead.objects.filter(organization=org).delete()
    RecordPhone.objects.filter(organization=org).delete()
    org.delete()
    user.delete()


if __name__ == "__main__":
    main()
