"""What one send costs, per process role, measured in one process (production mode: PostgreSQL, Redis, the
standalone sandbox as Twilio).

    python bench/send_cost.py [--messages 300] [--bulk 2000] [--db qs_send_cost_bench]
        [--redis redis://127.0.0.1:6379/7] [--profile api|worker|bulk] [--show-queries]

Phases, each on its own clock (``time.process_time`` of this process: CPU, not wall time, so the numbers hold
on a shared host; PostgreSQL's own CPU is not in them):

- **API send (web)**: ``POST /api/v1/messages`` through Django's test client with an API token: the whole
  middleware stack, token authentication, the serializer, the send service, the commit, the after-commit
  work that runs in the request (queueing the task; the inbox's step of the new message) and the answer.
  The inbox's step is also timed on its own (its share is printed apart).
- **API filing** (where the code files API sends from a worker): the drain that files the messages those
  sends stored, in batches (``file_waiting_outbound_task``), as a worker runs it after a burst.
- **worker send**: ``messaging.services.delivery.deliver(id)`` for each message those sends stored (what
  the Celery task runs): re-read, consent at send time, throttle, claim, the Twilio request to the
  sandbox, the status, and the after-commit work of the status.
- **bulk send** (``--bulk N``, skipped when the code has no ``send_many``): the campaign path, a worker
  storing N recipients in batches (``--batch``) with ``messaging.services.bulk_sending.send_many`` and
  handing them to the sandbox with ``deliver_many``; messages handed to the sandbox per second, and CPU
  and queries per message.

Prints statements per message (every statement sent through a cursor, SAVEPOINTs included; BEGIN and
COMMIT are not, which ``django_assert_max_num_queries`` also counts), the load average and the CPU stolen
by the hypervisor during each phase (``bench/machine.py``). The queued Celery tasks are purged at the end (no
worker runs here). Runs on older code too (``git worktree add /tmp/before <commit>`` and run it there), so
the before/after are measured side by side.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import Phase  # noqa: E402
from bench.send_path import _ok, free_port, stack_env, wait_for  # noqa: E402

PY = sys.executable


def _prepare(args) -> tuple[subprocess.Popen, str]:
    sandbox_port = free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}/sandbox"
    env = stack_env(args.db, args.redis, free_port(), sandbox_url)
    env["ALLOWED_HOSTS"] = "testserver,127.0.0.1,localhost"
    for cmd in (f"DROP DATABASE IF EXISTS {args.db}", f"CREATE DATABASE {args.db}"):
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-c", cmd], capture_output=True)
    subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    sandbox = subprocess.Popen(
        [PY, "manage.py", "twilio_sandbox", "--host", "127.0.0.1", "--port", str(sandbox_port)],
        cwd=ROOT,
        env=env,
        stdout=open("/tmp/bench-send-cost-sandbox.log", "wb"),
        stderr=subprocess.STDOUT,
    )
    wait_for(lambda: _ok(sandbox_url + "/control/health"), 120, "the sandbox")
    os.environ.update(env)
    return sandbox, sandbox_url


def _world(sandbox_url: str):
    from django.contrib.auth import get_user_model

    from messaging.models import MessagingSettings, PhoneNumber, TwilioAccount
    from tenancy.models import Membership, Organization, Role
    from tenancy.services import do_create_api_token

    account = requests.post(sandbox_url + "/control/accounts", json={"status": "active"}, timeout=10).json()
    sid, token = account["sid"], account["auth_token"]
    remote = requests.post(
        f"{sandbox_url}/control/accounts/{sid}/numbers",
        json={"phone_number": "+14155550142", "type": "local"},
        timeout=10,
    ).json()
    requests.post(
        f"{sandbox_url}/control/accounts/{sid}/behaviour",
        json={"rates": {"local": 100000, "shortcode": 100000}, "delay_ms": [0, 1], "concurrency_limit": 1000},
        timeout=10,
    )
    org = Organization.objects.create(name="Bench", slug="bench")
    user = get_user_model().objects.create_user(username="bench", password="x")  # noqa: S106
    membership = Membership.objects.create(organization=org, user=user, role=Role.ADMIN)
    acc = TwilioAccount(organization=org, account_sid=sid, status="valid", twilio_status="active")
    acc.set_auth_token(token)
    acc.save()
    number = PhoneNumber.objects.create(
        organization=org,
        account=acc,
        sid=remote["sid"],
        phone_number=remote["phone_number"],
        number_type="local",
        sms_capable=True,
        mms_capable=True,
    )
    MessagingSettings.objects.create(organization=org, default_number=number)
    _t, key = do_create_api_token(user, org, "bench")
    return org, user, membership, number, key, sid


def _loop_cpu() -> float:
    start, total = time.process_time(), 0
    for i in range(2_000_000):
        total += i
    return time.process_time() - start


class _Timed:
    """Adds up the CPU time spent inside one function (the inbox's step), to print its share apart."""

    def __init__(self, holder: dict, name: str) -> None:
        self.holder, self.name, self.cpu, self.calls = holder, name, 0.0, 0
        self.real = holder[name]
        holder[name] = self

    def __call__(self, *args, **kwargs):
        start = time.process_time()
        try:
            return self.real(*args, **kwargs)
        finally:
            self.cpu += time.process_time() - start
            self.calls += 1


class _Counter:
    """Counts the statements this process sends (no cap, unlike the debug query log)."""

    def __init__(self) -> None:
        self.count = 0
        self.sql: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        if len(self.sql) < 400:
            self.sql.append(sql)
        return execute(sql, params, many, context)


def _measure(name: str, n: int, run, profile: str | None, extra: str = ""):
    from django.db import connection

    profiler = cProfile.Profile() if profile == name else None
    counter = _Counter()
    with Phase() as phase, connection.execute_wrapper(counter):
        wall0, cpu0 = time.monotonic(), time.process_time()
        if profiler:
            profiler.enable()
        result = run()
        if profiler:
            profiler.disable()
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    print(
        f"{name:>7}: {n} messages, {1000 * cpu / n:.2f} ms CPU per message, "
        f"{counter.count / n:.2f} statements per message, {n / wall:.0f} messages/s in this process "
        f"({wall:.1f} s){extra}; {phase.describe()}"
    )
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(
            r"messaging|tenancy|crm|quicksend|twilio/rest|twilio/http|requests/sessions", 45
        )
    return result, counter


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--bulk", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--db", default="qs_send_cost_bench")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/7")
    parser.add_argument("--profile", choices=["api", "api-filing", "worker", "bulk", "filing"])
    parser.add_argument("--show-queries", action="store_true")
    args = parser.parse_args()

    sandbox, sandbox_url = _prepare(args)
    try:
        import django

        django.setup()
        _run(args, sandbox_url)
    finally:
        subprocess.run([PY, "-m", "celery", "-A", "quicksend", "purge", "-f"], cwd=ROOT, capture_output=True)
        sandbox.terminate()
        sandbox.wait(10)


def _run(args, sandbox_url: str) -> None:
    from django.test import Client

    from messaging.inbox import steps
    from messaging.models import Message
    from messaging.services import delivery

    print(
        f"host speed: a 2,000,000-step Python loop takes {_loop_cpu():.2f} s of CPU now (compare runs by it)"
    )
    org, user, membership, number, key, sid = _world(sandbox_url)
    client = Client(HTTP_AUTHORIZATION=f"Token {key}")

    def post(i: int) -> int:
        response = client.post(
            "/api/v1/messages",
            data=json.dumps(
                {"to": f"+1206555{i % 10000:04d}", "body": f"Bench message {i}: code {i * 7919}"}
            ),
            content_type="application/json",
        )
        assert response.status_code == 201, response.content
        return response.json()["id"]

    warm = [post(i) for i in range(20)]
    for message_id in warm:
        delivery.deliver(message_id)
    _file_api_sends()  # the warm-up's own, when a worker files them

    n = args.messages
    inbox_step = _Timed(steps._handlers, "outbound")
    ids, api_queries = _measure("api", n, lambda: [post(1000 + i) for i in range(n)], args.profile)
    steps._handlers["outbound"] = inbox_step.real
    print(
        f"         of which the inbox's step of the new message: {1000 * inbox_step.cpu / n:.2f} ms CPU per "
        "message"
    )
    if args.show_queries:
        _print_queries(api_queries, n)
    _measure_api_filing(n, args)

    from messaging.inbox import actions as inbox_actions

    status_step = _Timed(inbox_actions.__dict__, "handle_status")
    _done, worker_queries = _measure("worker", n, lambda: [delivery.deliver(i) for i in ids], args.profile)
    inbox_actions.handle_status = status_step.real
    print(
        f"         of which the inbox's news of the status (handle_status): "
        f"{1000 * status_step.cpu / n:.2f} ms CPU per message"
    )
    if args.show_queries:
        _print_queries(worker_queries, n)
    handed = Message.objects.filter(pk__in=ids, sid__isnull=False).count()
    print(f"         handed to the sandbox with their SID stored: {handed} of {n}")

    try:
        from messaging.services.bulk_sending import Recipient, send_many
    except ImportError:
        send_many = None
    if send_many is None or not args.bulk:
        print("   bulk: skipped (no messaging.services.bulk_sending.send_many in this code)")
        return

    def bulk() -> int:
        stored = 0
        for start in range(0, args.bulk, args.batch):
            recipients = [
                Recipient(key=f"bench:{i}:1", to=f"+1303555{i % 10000:04d}", body=f"Campaign step 1 for {i}")
                for i in range(start, min(args.bulk, start + args.batch))
            ]
            result = send_many(
                org, recipients, source=Message.Source.CAMPAIGN, source_label="Bench", queue_delivery=False
            )
            stored += len(result.queued)
            delivery.deliver_many([m.pk for m in result.queued])
        return stored

    stored, bulk_queries = _measure("bulk", args.bulk, bulk, args.profile)
    if args.show_queries:
        _print_queries(bulk_queries, args.bulk)
    handed = Message.objects.filter(source=Message.Source.CAMPAIGN, sid__isnull=False).count()
    at_sandbox = len(
        requests.get(f"{sandbox_url}/control/accounts/{sid}/messages", timeout=60).json()["messages"]
    )
    print(f"         stored {stored}, with their SID {handed}; at the sandbox {at_sandbox} in all")
    # The inbox's step of each batched message runs in its own task (the inbox's work, measured apart).
    from messaging.tasks.sending import file_outbound_batch_task

    ids = list(Message.objects.filter(source=Message.Source.CAMPAIGN).values_list("pk", flat=True))
    _measure("filing", len(ids), lambda: file_outbound_batch_task.run(ids), args.profile)


def _file_api_sends() -> None:
    try:
        from messaging.tasks.sending import file_waiting_outbound_task
    except ImportError:
        return
    file_waiting_outbound_task.run()


def _measure_api_filing(n: int, args) -> None:
    """Where the API sends' inbox step runs in a worker (the drain of ``messaging.inbox.outbound_batch``):
    the drain over what the API phase stored, as a worker would run it after a burst."""
    try:
        from messaging.tasks.sending import file_waiting_outbound_task
    except ImportError:
        return  # older code files each message inside its request (counted in the api row)
    _done, queries = _measure("api-filing", n, lambda: file_waiting_outbound_task.run(), args.profile)
    if args.show_queries:
        _print_queries(queries, n)


def _print_queries(counter, n: int) -> None:
    per = max(1, counter.count // max(1, n))
    for sql in counter.sql[-per:]:
        print("   ", sql[:200])


if __name__ == "__main__":
    main()
