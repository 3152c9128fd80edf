"""Inbox query benchmark on PostgreSQL: an organization with 1,000,000 messages in 100,000 conversations and
50 agents. Measures the server time of the conversation list (first and next page), a thread page (50
messages) and search by number and by text, and prints the query plans (EXPLAIN ANALYZE).

Server time = a request through Django's test client in-process (the whole middleware stack, session auth,
DRF view, serialization; no network), timed around ``client.get``; p50/p95 over ``--runs`` requests. Also per
request: the CPU time of this process (``time.process_time``: steadier than wall time on a shared machine, but
without PostgreSQL's own work) and the number of SQL queries. The load average is printed before and after.

The data is generated set-based in SQL (``generate_series``, not the ORM row by row): see ``GENERATE``.

Usage (needs PostgreSQL and Redis; its own database, kept for the next run unless ``--drop``)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/qs_inbox_bench REDIS_URL=redis://127.0.0.1:6379/10 \\
    SECRET_KEY=x QUICKSEND_ENCRYPTION_KEYS=... ALLOWED_HOSTS=testserver PUBLIC_BASE_URL=http://testserver \\
    python bench/inbox_queries.py [--conversations 100000 --messages 1000000 --runs 40 --drop]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = (
    "hello thanks viewing tomorrow price offer flat house keys deposit contract signed please call back "
    "available monday tuesday friday weekend garden parking rent lease agent photos address moving date "
    "confirm appointment cancel reschedule question mortgage survey inspection kitchen bathroom bedroom"
).split()

# Set-based generation: conversations round-robin over 10 numbers and 50 agent owners, messages spread over
# the conversations (10 per conversation on average), bodies of three words from WORDS plus a token, times
# spread over the last 90 days; one long thread (500 more messages); 5% of conversations unread for their
# owner.
GENERATE = """
INSERT INTO messaging_conversation (organization_id, phone_number_id, customer_number, is_current, status,
    record_type, record_id, other_matches, regarding_type, regarding_id, owner_id, team_id, last_message_at,
    last_message_preview, last_message_direction, last_message_status, created_at, updated_at)
SELECT %(org)s, (%(numbers)s::bigint[])[1 + i %% 10], '+1202' || (2000000 + i)::text, true,
    CASE WHEN i %% 20 = 0 THEN 'archived' ELSE 'open' END, '', NULL, '[]', '', NULL,
    (%(agents)s::int[])[1 + i %% 50], NULL, now() - (i || ' seconds')::interval * 77, 'preview ' || i,
    'inbound', 'received', now() - interval '90 days', now()
FROM generate_series(1, %(conversations)s) AS i;

INSERT INTO messaging_message (organization_id, conversation_id, account_id, direction, source, status,
    status_rank, sid, from_number, to_number, body, num_segments, encoding, num_media, error_code,
    error_message, sender_id, idempotency_key, handed_over_at, send_attempts, sent_at, delivered_at,
    failed_at, created_at, updated_at)
SELECT %(org)s, %(first_conv)s + (i %% %(conversations)s), %(account)s,
    CASE WHEN i %% 2 = 0 THEN 'inbound' ELSE 'outbound' END,
    CASE WHEN i %% 2 = 0 THEN 'customer' ELSE 'agent' END,
    CASE WHEN i %% 2 = 0 THEN 'received' ELSE 'delivered' END, 60, 'SM' || md5(i::text), '+1202', '+1415',
    w[1 + i %% 40] || ' ' || w[1 + (i / 40) %% 40] || ' ' || w[1 + (i / 1600) %% 40]
        || ' ref' || (i %% 100000),
    1, 'GSM-7', 0, NULL, '', NULL, '', NULL, 0, NULL, NULL, NULL,
    now() - (i || ' seconds')::interval * 7, now()
FROM generate_series(1, %(messages)s) AS i, (SELECT %(words)s::text[] AS w) AS words;

INSERT INTO messaging_message (organization_id, conversation_id, account_id, direction, source, status,
    status_rank, sid, from_number, to_number, body, num_segments, encoding, num_media, error_code,
    error_message, sender_id, idempotency_key, handed_over_at, send_attempts, sent_at, delivered_at,
    failed_at, created_at, updated_at)
SELECT %(org)s, %(first_conv)s, %(account)s, 'inbound', 'customer', 'received', 60, 'SMlong' || i, '+1202',
    '+1415', 'a long thread, message ' || i, 1, 'GSM-7', 0, NULL, '', NULL, '', NULL, 0, NULL, NULL, NULL,
    now() - (i || ' minutes')::interval, now()
FROM generate_series(1, 500) AS i;

INSERT INTO messaging_conversationuserstate (organization_id, conversation_id, user_id, unread_count,
    last_read_message_id, dismissed, last_active_at, updated_at)
SELECT c.organization_id, c.id, c.owner_id, 1 + c.id %% 4, NULL, false, NULL, now()
FROM messaging_conversation c WHERE c.organization_id = %(org)s AND c.id %% 20 = 3;
"""


# A text search: the message ids (trigram index; the recent window too for a common word), then the page.
TEXT_SEARCH = ("messaging_message", "messaging_conversation")


def generate(conversations: int, messages: int):
    from django.contrib.auth import get_user_model
    from django.db import connection

    from messaging.models import Conversation, PhoneNumber, TwilioAccount
    from tenancy.models import Membership, Organization, Role

    org, created = Organization.objects.get_or_create(slug="inbox-bench", defaults={"name": "Inbox bench"})
    User = get_user_model()
    admin, _ = User.objects.get_or_create(username="bench-admin")
    Membership.objects.get_or_create(user=admin, organization=org, defaults={"role": Role.ADMIN})
    agents = []
    for i in range(50):
        user, _ = User.objects.get_or_create(username=f"bench-agent-{i}")
        Membership.objects.get_or_create(user=user, organization=org, defaults={"role": Role.AGENT})
        agents.append(user)
    if Conversation.objects.filter(organization=org).exists():
        return org, admin, agents
    account = TwilioAccount(organization=org, account_sid="AC" + "b" * 32, status="valid")
    account.set_auth_token("x" * 32)
    account.save()
    numbers = [
        PhoneNumber.objects.create(
            organization=org,
            account=account,
            sid=f"PN{i:032d}",
            phone_number=f"+1415555{i:04d}",
            sms_capable=True,
        )
        for i in range(10)
    ]
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS message_body_trgm")
        first_conv = None
        for statement in [s for s in GENERATE.split(";\n") if s.strip()]:
            params = {
                "org": org.pk,
                "numbers": [n.pk for n in numbers],
                "agents": [a.pk for a in agents],
                "conversations": conversations,
                "messages": messages,
                "account": account.pk,
                "words": WORDS[:40],
                "first_conv": first_conv or 0,
            }
            cursor.execute(statement, params)
            if first_conv is None:  # the conversations' ids are contiguous in a fresh database
                cursor.execute(
                    "SELECT min(id) FROM messaging_conversation WHERE organization_id = %s", [org.pk]
                )
                first_conv = cursor.fetchone()[0]
        cursor.execute(
            "CREATE INDEX message_body_trgm ON messaging_message USING gin (UPPER(body) gin_trgm_ops)"
        )
        # What autovacuum does after a bulk load in production (it is off on the shared benchmark server):
        # statistics, and the visibility map that lets the recent-window bound be an index-only scan.
        cursor.execute("VACUUM (ANALYZE)")
    took = time.perf_counter() - started
    print(f"generated {conversations} conversations, {messages} messages in {took:.1f} s")
    return org, admin, agents


def _p50_p95(values: list[float]) -> tuple[float, float]:
    values = sorted(values)
    return statistics.median(values), values[int(0.95 * (len(values) - 1))]


def measure(client, url: str, runs: int) -> dict:
    """Wall and CPU time (ms, p50 and p95) of ``runs`` requests after a warm-up, and the queries of one."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url)  # warm
    with CaptureQueriesContext(connection) as captured:
        status = client.get(url).status_code
    queries = len(captured.captured_queries)  # now: the log restarts with the next request
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        client.get(url)
        cpus.append((time.process_time() - cpu) * 1000)
        walls.append((time.perf_counter() - wall) * 1000)
    return {"wall": _p50_p95(walls), "cpu": _p50_p95(cpus), "queries": queries, "status": status}


def explain(client, url: str, markers: str | tuple[str, ...]) -> str:
    """EXPLAIN ANALYZE of the request's first query containing each marker (a table name)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    queries = [q["sql"] for q in captured.captured_queries]
    plans = []
    for marker in (markers,) if isinstance(markers, str) else markers:
        sql = next((q for q in queries if f'FROM "{marker}"' in q), None)
        if sql is None:
            plans.append(f"({marker}: query not found)")
            continue
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS OFF, TIMING ON) " + sql)
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
    return "\n\n".join(plans)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--drop", action="store_true", help="drop the database at the end")
    parser.add_argument("--plans", action="store_true", help="print EXPLAIN ANALYZE of each query")
    args = parser.parse_args()
    url = os.environ["DATABASE_URL"]
    from benchdb import drop_database, ensure_database

    ensure_database(url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quicksend.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from rest_framework.test import APIClient

    org, admin, agents = generate(args.conversations, args.messages)
    from messaging.models import Conversation

    busy = Conversation.objects.filter(organization=org).order_by("pk").first()  # 500 more messages
    customer = busy.customer_number
    cases = []
    for who, user in (("admin", admin), ("agent", agents[7])):
        client = APIClient()
        client.force_login(user)
        first = client.get("/api/v1/conversations").json()
        cases += [
            (f"list first page ({who})", client, "/api/v1/conversations", "messaging_conversation"),
            (
                f"list next page ({who})",
                client,
                f"/api/v1/conversations?cursor={first['next']}",
                "messaging_conversation",
            ),
        ]
    client = APIClient()
    client.force_login(admin)
    thread = f"/api/v1/conversations/{busy.pk}/messages?page_size=50"
    cases += [
        (
            "list mine (agent, owner=me)",
            cases[2][1],
            "/api/v1/conversations?owner=me",
            "messaging_conversation",
        ),
        ("list unread (agent)", cases[2][1], "/api/v1/conversations?unread=true", "messaging_conversation"),
        ("thread page (50 messages)", client, thread, "messaging_message"),
        (
            "reference: GET /api/v1/inbox-settings",
            client,
            "/api/v1/inbox-settings",
            "messaging_inboxsettings",
        ),
        ("search by number", client, f"/api/v1/conversations?q={customer[2:]}", "messaging_conversation"),
        ("search by part of a number", client, "/api/v1/conversations?q=2099", "messaging_conversation"),
        ("search by text", client, "/api/v1/conversations?q=ref12345", TEXT_SEARCH),
        ("search by text (common words)", client, "/api/v1/conversations?q=deposit", TEXT_SEARCH),
    ]
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"{'case':36} {'p50 ms':>8} {'p95 ms':>8} {'cpu p50':>8} {'cpu p95':>8} {'queries':>8}  status")
    for name, c, u, _marker in cases:
        m = measure(c, u, args.runs)
        print(
            f"{name:36} {m['wall'][0]:8.1f} {m['wall'][1]:8.1f} {m['cpu'][0]:8.1f} {m['cpu'][1]:8.1f}"
            f" {m['queries']:8}  {m['status']}"
        )
    print("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    if args.plans:
        for name, c, u, marker in cases:
            print(f"\n### {name}\n{explain(c, u, marker)}")
    if args.drop:
        from django.db import connections

        connections.close_all()
        drop_database(url)
        print("dropped", urlparse(url).path.lstrip("/"))


if __name__ == "__main__":
    main()
