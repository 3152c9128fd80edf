"""The send path in production mode: API sends → PostgreSQL → Celery worker → the standalone sandbox.

    python bench/send_path.py [--messages 2000] [--concurrency 16] [--db qs_send_bench]
        [--redis redis://127.0.0.1:6379/7] [--web-workers 1] [--client raw|requests]

Starts the standalone sandbox (one account, one local number, its rate raised), migrates a scratch database,
clears its Redis db, creates an organization with an admin and an API token, starts uvicorn
(``--web-workers`` processes, 1 unless told) and a Celery worker (threads pool, 8 threads), then POSTs
``/api/v1/messages`` over ``--concurrency`` kept-alive connections (``--client raw``, the default: raw
HTTP/1.1 on asyncio, the lean client of bench/ingest_webhooks.py; ``--client requests``: the requests library
from as many threads, which costs the shared cores about 1.2 ms more per send) and waits until every
message has its Twilio SID and its inbox step is done (filed in the inbox). Prints:

- API sends/s (201 answers per second) and end-to-end sends/s (messages handed to the sandbox with their SID
  stored and filed in the inbox, from the first request to the last of these);
- CPU per message: process CPU time (user + system, from /proc) of the web and worker processes during the
  run, divided by the messages; then every process on the host by role (web, PostgreSQL, Redis, worker,
  sandbox, load generator) and the share of the 2 cores they kept busy;
- a speed probe of the host (a fixed pure-Python loop's CPU time) before and after: on a shared VM the same
  code's CPU time varies by a quarter or more between minutes, so compare runs next to their probes, and
  compare code side by side (before, after, before, after).

The sender-number throttle is raised (``QUICKSEND_SEND_RATES``) so the Twilio rate of a long code (1/s) is
not what is measured. The load generator and the sandbox share the same 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PY = sys.executable
TICK = os.sysconf("SC_CLK_TCK")

SETUP = """
import django, json, sys
django.setup()
from django.contrib.auth import get_user_model
from messaging.models import MessagingSettings, PhoneNumber, TwilioAccount
from tenancy.models import Membership, Organization, Role
from tenancy.services import do_create_api_token
sid, token, number_sid, number = sys.argv[1:5]
org = Organization.objects.create(name="Bench", slug=f"bench-{sid[-8:]}")
user = get_user_model().objects.create_user(username=f"bench-{sid[-8:]}", password="x")
Membership.objects.create(organization=org, user=user, role=Role.ADMIN)
account = TwilioAccount(organization=org, account_sid=sid, status="valid", twilio_status="active")
account.set_auth_token(token)
account.save()
pn = PhoneNumber.objects.create(organization=org, account=account, sid=number_sid, phone_number=number,
    number_type="local", sms_capable=True, mms_capable=True)
MessagingSettings.objects.create(organization=org, default_number=pn)
_t, key = do_create_api_token(user, org, "bench")
print(json.dumps({"key": key, "org": org.pk}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its live descendants."""
    parents: dict[int, int] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
        stats[int(entry)] = fields
    family = {pid}
    changed = True
    while changed:
        changed = False
        for child, parent in parents.items():
            if parent in family and child not in family:
                family.add(child)
                changed = True
    total = 0
    for member in family:
        if member in stats:
            total += int(stats[member][11]) + int(stats[member][12])
    return total / TICK


def stack_env(db: str, redis: str, web_port: int, sandbox_url: str) -> dict:
    """The environment of a benchmark's production stack: a scratch database and Redis db, the standalone
    sandbox as Twilio, the sender throttle raised (the carrier's rate is not what is measured), no in-process
    scheduler."""
    rates = {"local": 100000, "tollfree": 100000, "shortcode": 100000, "mobile": 100000, "unknown": 100000}
    return dict(
        os.environ,
        SECRET_KEY="bench",  # noqa: S106 - a throwaway key for a scratch database
        QUICKSEND_ENCRYPTION_KEYS="3q2Bpd0mRkpq6GaoBGHZOXHU4_lpr6wwzoR4QgP5G6s=",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{db}",
        REDIS_URL=redis,
        PUBLIC_BASE_URL=f"http://127.0.0.1:{web_port}",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        TWILIO_API_BASE_URL=sandbox_url,
        QUICKSEND_SEND_RATES=json.dumps(rates),
        QUICKSEND_DISABLE_SCHEDULER="1",
        DJANGO_SETTINGS_MODULE="quicksend.settings",
        LOG_LEVEL="WARNING",
        DB_POOL_MAX="20",
        PYTHONUNBUFFERED="1",
    )


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def psql(db: str, sql: str) -> str:
    return subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-tAc", sql], capture_output=True, text=True
    ).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--db", default="qs_send_bench")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/7")
    parser.add_argument("--worker-threads", type=int, default=8)
    parser.add_argument(
        "--client",
        choices=["raw", "requests"],
        default="raw",
        help="the load generator: raw HTTP/1.1 keep-alive connections on asyncio (as "
        "bench/ingest_webhooks.py), or the requests library from client threads (about 1.2 ms more CPU "
        "per send on these cores)",
    )
    parser.add_argument(
        "--web-workers", type=int, default=1, help="uvicorn processes (the deployment's WEB_CONCURRENCY is 2)"
    )
    args = parser.parse_args()

    web_port, sandbox_port = free_port(), free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}/sandbox"
    env = stack_env(args.db, args.redis, web_port, sandbox_url)
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-c", f"DROP DATABASE IF EXISTS {args.db}"],
        capture_output=True,
    )
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-c", f"CREATE DATABASE {args.db}"],
        check=True,
        capture_output=True,
    )
    subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    # The Redis db is this bench's own: a key another run left (a number's send-rate, a drain's flag, a queued
    # task) would change what is measured.
    import redis

    redis.Redis.from_url(args.redis).flushdb()
    subprocess.run(
        [PY, "-m", "celery", "-A", "quicksend", "purge", "-f"], cwd=ROOT, env=env, capture_output=True
    )

    procs = []
    logs = Path("/tmp")
    try:
        sandbox = subprocess.Popen(
            [PY, "manage.py", "twilio_sandbox", "--host", "127.0.0.1", "--port", str(sandbox_port)],
            cwd=ROOT,
            env=env,
            stdout=open(logs / "bench-sandbox.log", "wb"),
            stderr=subprocess.STDOUT,
        )
        procs.append(sandbox)
        wait_for(lambda: _ok(sandbox_url + "/control/health"), 120, "the sandbox")
        account = requests.post(
            sandbox_url + "/control/accounts", json={"status": "active"}, timeout=10
        ).json()
        sid, token = account["sid"], account["auth_token"]
        number = requests.post(
            f"{sandbox_url}/control/accounts/{sid}/numbers",
            json={"phone_number": "+14155550142", "type": "local"},
            timeout=10,
        ).json()
        requests.post(
            f"{sandbox_url}/control/accounts/{sid}/behaviour",
            json={"rates": {"local": 1000}, "delay_ms": [5, 40], "concurrency_limit": 1000},
            timeout=10,
        )
        setup = subprocess.run(
            [PY, "-c", SETUP, sid, token, number["sid"], number["phone_number"]],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        key = json.loads(setup.stdout.strip().splitlines()[-1])["key"]

        web = subprocess.Popen(
            [
                PY,
                "-m",
                "uvicorn",
                "quicksend.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(web_port),
                "--lifespan",
                "off",
                "--workers",
                str(args.web_workers),
                "--no-access-log",
            ],
            cwd=ROOT,
            env=env,
            stdout=open(logs / "bench-web.log", "wb"),
            stderr=subprocess.STDOUT,
        )
        procs.append(web)
        worker = subprocess.Popen(
            [
                PY,
                "-m",
                "celery",
                "-A",
                "quicksend",
                "worker",
                "--pool",
                "threads",
                "--concurrency",
                str(args.worker_threads),
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-Q",
                "quicksend",
            ],
            cwd=ROOT,
            env=env,
            stdout=open(logs / "bench-worker.log", "wb"),
            stderr=subprocess.STDOUT,
        )
        procs.append(worker)
        base = f"http://127.0.0.1:{web_port}"
        wait_for(lambda: _ok(base + "/livez"), 120, "uvicorn")

        headers = {"Authorization": f"Token {key}"}
        sent_sql = "SELECT count(*) FROM messaging_message WHERE sid IS NOT NULL"
        unfiled_sql = "SELECT count(*) FROM messaging_inboxstep WHERE done_at IS NULL"

        def payload(i: int) -> dict:
            return {
                "to": f"+1206555{i % 10000:04d}",
                "body": f"Bench message {i}: your code is {i * 7919 % 100000}",
            }

        def post(i: int, session_cache={}) -> int:  # noqa: B006 - one session per thread
            import threading

            session = session_cache.setdefault(threading.get_ident(), requests.Session())
            response = session.post(base + "/api/v1/messages", json=payload(i), headers=headers, timeout=30)
            return response.status_code

        def post_all(indices: range) -> list[int]:
            if args.client == "requests":
                with ThreadPoolExecutor(args.concurrency) as pool:
                    return list(pool.map(post, indices))
            return asyncio.run(post_raw(web_port, key, [payload(i) for i in indices], args.concurrency))

        # Warm-up (imports, connection pools), not measured.
        warm = post_all(range(50))
        assert all(s == 201 for s in warm), warm
        wait_for(lambda: psql(args.db, sent_sql) == "50", 60, "the warm-up sends")
        wait_for(lambda: psql(args.db, unfiled_sql) == "0", 60, "the warm-up's inbox steps")

        from bench.machine import Phase, ProcessCPU, speed_probe

        probe_before = speed_probe()
        phase = Phase().__enter__()
        roles = ProcessCPU().__enter__()
        cpu_web0, cpu_worker0 = tree_cpu(web.pid), tree_cpu(worker.pid)
        start = time.monotonic()
        statuses = post_all(range(1000, 1000 + args.messages))
        api_done = time.monotonic()
        target = str(50 + args.messages)
        wait_for(lambda: psql(args.db, sent_sql) == target, 300, "every SID")
        # Where a worker files the sends in the inbox (sessions, read state, live events), that is part of
        # the path too: wait until every message's inbox step is done.
        wait_for(lambda: psql(args.db, unfiled_sql) == "0", 300, "every inbox step")
        end = time.monotonic()
        cpu_web = tree_cpu(web.pid) - cpu_web0
        cpu_worker = tree_cpu(worker.pid) - cpu_worker0
        phase.__exit__(None, None, None)
        roles.__exit__(None, None, None)
        probe_after = speed_probe()

        at_sandbox = len(
            requests.get(f"{sandbox_url}/control/accounts/{sid}/messages", timeout=60).json()["messages"]
        )
        errors = sum(1 for s in statuses if s != 201)
        n = args.messages
        print(
            f"messages: {n} (+50 warm-up), client ({args.client}) connections: {args.concurrency}, "
            f"worker threads: {args.worker_threads}"
        )
        print(f"API: {n / (api_done - start):.0f} sends/s accepted (201), errors: {errors}")
        print(
            f"end to end: {n / (end - start):.0f} sends/s (first request → last SID stored, message filed), "
            f"{end - start:.1f} s"
        )
        print(
            f"CPU per message: web {1000 * cpu_web / n:.2f} ms, worker {1000 * cpu_worker / n:.2f} ms, "
            f"total {1000 * (cpu_web + cpu_worker) / n:.2f} ms"
        )
        busy = sum(roles.used().values())
        print(
            f"every process on the host, {roles.per(n).replace('request', 'message')}; "
            f"all {1000 * busy / n:.2f} ms per message ({busy:.1f} of {2 * (end - start):.1f} CPU-s busy)"
        )
        print(f"messages at the sandbox: {at_sandbox} (expected {50 + n})")
        print(f"machine during the run: {phase.describe()}")
        print(
            f"host speed: a fixed pure-Python loop took {probe_before:.0f} ms of CPU before the run and "
            f"{probe_after:.0f} ms after (lower is faster; compare runs by it)"
        )
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


async def post_raw(port: int, key: str, payloads: list[dict], connections: int) -> list[int]:
    """POST every payload to ``/api/v1/messages`` over ``connections`` kept-alive HTTP/1.1 connections, each
    sending its next request when the last is answered; the statuses in the payloads' order."""
    from bench.ingest_webhooks import read_response

    requests_bytes = []
    for item in payloads:
        body = json.dumps(item).encode()
        head = (
            f"POST /api/v1/messages HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Token {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        requests_bytes.append(head.encode() + body)
    statuses = [0] * len(payloads)
    waiting = iter(range(len(payloads)))

    async def one_connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for i in waiting:
            writer.write(requests_bytes[i])
            statuses[i], close = await read_response(reader)
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()

    await asyncio.gather(*(one_connection() for _ in range(connections)))
    return statuses


def _ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


if __name__ == "__main__":
    main()
