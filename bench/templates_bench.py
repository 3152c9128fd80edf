"""Benchmark: what templates cost on the paths that use them.

1. ``render`` per call (pure Python, no database): a typical lead template and a 1,600-character one.
2. ``crm.custom_fields.custom_field_keys`` (the editor's and the save check's list of a type's custom
   fields) against PostgreSQL with N leads of one organization, most with custom fields.
3. A send by template vs the same send with a body (``do_send_message``, stored and queued, not handed to
   Twilio): database queries and time per message.

Run in production mode, e.g.::

    SECRET_KEY=x QUICKSEND_ENCRYPTION_KEYS=3q2Bpd0mRkpq6GaoBGHZOXHU4_lpr6wwzoR4QgP5G6s= \
    PUBLIC_BASE_URL=http://localhost ALLOWED_HOSTS=localhost \
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/qs_templates_bench REDIS_URL=redis://127.0.0.1:6379/4 \
    python bench/templates_bench.py --leads 50000

It creates the database when missing, migrates it, works in a fresh organization and drops the database
at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quicksend.settings")

WELCOME = (
    'Hi {{first_name|default:"there"}}, thanks for visiting our open house! This is {{agent.first_name}} '
    "from {{org.name}}. Met you via {{custom.source}}. Any questions? Just reply here."
)


def _per_call(fn, seconds: float = 1.5) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leads", type=int, default=50_000)
    parser.add_argument("--sends", type=int, default=200)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    from benchdb import bench_line, drop_database, ensure_database

    url = os.environ["DATABASE_URL"]
    ensure_database(url)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    call_command("migrate", verbosity=0)
    from crm.custom_fields import custom_field_keys
    from crm.models import Lead, RecordPhone
    from messaging.models import Message
    from messaging.services import sending
    from quicksend.celery import app
    from templates_app.models import MessageTemplate
    from templates_app.rendering import render
    from tenancy.models import Membership, Organization, Role

    app.conf.task_always_eager = False  # the send's task is queued, not run: only the service is timed
    sending.send_after_commit = lambda *a, **k: None

    org, _account, number, _token = bench_line("templates")
    user = get_user_model().objects.create(username=f"bench-{org.slug}", first_name="Alice")
    Membership.objects.create(user=user, organization=org, role=Role.ADMIN)

    lead = Lead(first_name="Zoë", last_name="Q", custom_fields={"source": "open house"})
    lead.organization = Organization(name="Acme Realty")
    typical = _per_call(lambda: render(WELCOME, lead, sender=user))
    print(f"render, 190-char lead template     {typical * 1e6:8.1f} µs")
    long_body = (WELCOME + " ") * 8
    long_body = long_body[:1600]
    longest = _per_call(lambda: render(long_body, lead, sender=user))
    print(f"render, 1,600-char template        {longest * 1e6:8.1f} µs")

    batch = []
    for i in range(args.leads):
        custom = {"source": "open house", f"field_{i % 20}": "x"} if i % 4 else {}
        batch.append(
            Lead(
                organization=org,
                first_name=f"Lead{i}",
                last_name="Bench",
                mobile_phone=f"+1415{3000000 + i:07d}",
                mobile_phone_e164=f"+1415{3000000 + i:07d}",
                status="new",
                custom_fields=custom,
            )
        )
    Lead.objects.bulk_create(batch, batch_size=5000)
    RecordPhone.sync(list(Lead.objects.filter(organization=org)[:1]))
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        keys = custom_field_keys(org.pk, "lead")
        timings.append(time.perf_counter() - start)
    print(
        f"custom_field_keys, {args.leads:,} leads     {statistics.median(timings) * 1e3:8.1f} ms median of 5 "
        f"({len(keys)} keys)"
    )

    template = MessageTemplate.objects.create(
        organization=org, name="Welcome", body=WELCOME, record_type="lead", created_by=user
    )
    leads = list(Lead.objects.filter(organization=org).order_by("id")[: args.sends * 2])
    for label, kwargs, group in (
        ("send with a body", {"body": "Hi there, thanks for visiting!"}, leads[: args.sends]),
        ("send by template", {"template": template}, leads[args.sends :]),
    ):
        queries, start, cpu = [], time.perf_counter(), time.process_time()
        for record in group:
            with CaptureQueriesContext(connection) as captured:
                sending.do_send_message(
                    org,
                    actor=user,
                    source=Message.Source.AUTOMATION,
                    record=record,
                    from_number=number,
                    **kwargs,
                )
            queries.append(len(captured.captured_queries))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        print(
            f"{label:34s} {elapsed / len(group) * 1e3:8.2f} ms/message wall, "
            f"{cpu / len(group) * 1e3:.2f} ms CPU, "
            f"{statistics.median(queries):.0f} queries (median of {len(group)})"
        )
    template.refresh_from_db()
    print(f"usage count after the run: {template.usage_count}")
    connection.close()
    if not args.keep:
        drop_database(url)


if __name__ == "__main__":
    main()
