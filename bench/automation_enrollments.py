"""Automations at volume, production mode: N leads created through the API with an active automation
("a lead is created → text the welcome template") → enrollments → sends handed to the standalone sandbox.

    python bench/automation_enrollments.py [--records 10000] [--concurrency 16] [--db qs_automation_bench]
        [--redis redis://127.0.0.1:6379/10] [--worker-threads 8]

Starts the standalone sandbox (its rate raised), a scratch database, uvicorn (1 process) and a Celery worker,
creates an organization with an admin token, a template and the automation, then POSTs ``/api/v1/leads``
from ``--concurrency`` client threads. The leads' numbers are in a time zone where it is daytime now, so
quiet hours hold nothing back. Prints:

- API records/s (201 answers per second);
- enrollments/s (first request → last enrollment stored) and the time to the last first-step send (its SID
  stored);
- CPU per enrollment by process role (user + system, from /proc), from the first request to the last send:
  web (uvicorn), worker (Celery), the standalone sandbox, and PostgreSQL and Redis (their server processes,
  which other databases on a shared host also use); it includes the record's own creation and the send;
- the host: load average before and after, and the share of CPU the hypervisor stole during the run;
- exactly-once: enrollments and outbound texts, which must both equal the leads.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import Phase, ProcessCPU  # noqa: E402
from send_path import PY, ROOT, _ok, free_port, psql, stack_env, tree_cpu, wait_for  # noqa: E402

# (zone, number prefix, digits to fill): at any instant one of these is between 9:00 and 19:00.
DAYTIME_PREFIXES = [
    ("America/New_York", "+1212555", 4),
    ("Europe/London", "+4420794", 5),
    ("Asia/Kolkata", "+9111234", 5),
    ("Asia/Tokyo", "+813123", 5),
    ("Australia/Sydney", "+612123", 5),
    ("Pacific/Honolulu", "+1808555", 4),
]

SETUP = """
import django, json, sys
django.setup()
from django.contrib.auth import get_user_model
from campaigns.services import do_create_automation, do_set_automation_status
from messaging.models import MessagingSettings, PhoneNumber, TwilioAccount
from templates_app.models import MessageTemplate
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
welcome = MessageTemplate.objects.create(organization=org, name="Welcome", body="Hi {{first_name}}, welcome!")
automation = do_create_automation(org, user, name="Welcome", trigger={"type": "record_created",
    "record_type": "lead"}, steps=[{"type": "send_template", "template": welcome.pk}])
do_set_automation_status(automation, user, "active")
_t, key = do_create_api_token(user, org, "bench")
print(json.dumps({"key": key, "org": org.pk}))
"""


def daytime_prefix() -> tuple[str, int]:
    now = datetime.now(UTC)
    for zone, prefix, digits in DAYTIME_PREFIXES:
        if 9 <= now.astimezone(ZoneInfo(zone)).hour < 19:
            return prefix, digits
    raise SystemExit("no daytime zone in the list")


def start(cmd: list[str], env: dict, log: str) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--db", default="qs_automation_bench")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/10")
    parser.add_argument("--worker-threads", type=int, default=8)
    args = parser.parse_args()

    web_port, sandbox_port = free_port(), free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}/sandbox"
    env = stack_env(args.db, args.redis, web_port, sandbox_url)
    for sql in (f"DROP DATABASE IF EXISTS {args.db} WITH (FORCE)", f"CREATE DATABASE {args.db}"):
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-c", sql], check=True, capture_output=True
        )
    subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [PY, "-m", "celery", "-A", "quicksend", "purge", "-f"], cwd=ROOT, env=env, capture_output=True
    )

    procs = []
    try:
        cmd = [PY, "manage.py", "twilio_sandbox", "--host", "127.0.0.1", "--port", str(sandbox_port)]
        procs.append(start(cmd, env, "/tmp/bench-auto-sandbox.log"))
        wait_for(lambda: _ok(sandbox_url + "/control/health"), 180, "the sandbox")
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
        uvicorn = [PY, "-m", "uvicorn", "quicksend.asgi:application", "--host", "127.0.0.1"]
        uvicorn += ["--port", str(web_port), "--lifespan", "off", "--workers", "1", "--no-access-log"]
        web = start(uvicorn, env, "/tmp/bench-auto-web.log")
        procs.append(web)
        celery = [PY, "-m", "celery", "-A", "quicksend", "worker", "--pool", "threads"]
        celery += ["--concurrency", str(args.worker_threads), "--loglevel", "WARNING", "-Q", "quicksend"]
        celery += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        worker = start(celery, env, "/tmp/bench-auto-worker.log")
        procs.append(worker)
        base = f"http://127.0.0.1:{web_port}"
        wait_for(lambda: _ok(base + "/livez"), 180, "uvicorn")

        prefix, digits = daytime_prefix()
        headers = {"Authorization": f"Token {key}"}
        sessions: dict[int, requests.Session] = {}

        def post(i: int) -> int:
            import threading

            session = sessions.setdefault(threading.get_ident(), requests.Session())
            mobile = f"{prefix}{i % 10**digits:0{digits}d}"
            response = session.post(
                base + "/api/v1/leads",
                json={"first_name": f"Lead{i}", "last_name": "Bench", "mobile_phone": mobile},
                headers=headers,
                timeout=30,
            )
            return response.status_code

        enrolled_sql = "SELECT count(*) FROM campaigns_enrollment"
        sent_sql = "SELECT count(*) FROM messaging_message WHERE sid IS NOT NULL"
        with ThreadPoolExecutor(args.concurrency) as pool:
            warm = list(pool.map(post, range(50)))
        assert all(s == 201 for s in warm), warm
        wait_for(lambda: psql(args.db, sent_sql) == "50", 120, "the warm-up sends")

        sandbox = procs[0]
        load_before = os.getloadavg()
        cpu_web0, cpu_worker0 = tree_cpu(web.pid), tree_cpu(worker.pid)
        cpu_sandbox0 = tree_cpu(sandbox.pid)
        with Phase() as phase, ProcessCPU() as shared:
            begin = time.monotonic()
            with ThreadPoolExecutor(args.concurrency) as pool:
                statuses = list(pool.map(post, range(50, 50 + args.records)))
            api_done = time.monotonic()
            target = str(50 + args.records)
            wait_for(lambda: psql(args.db, enrolled_sql) == target, 3600, "every enrollment")
            enrolled_at = time.monotonic()
            wait_for(lambda: psql(args.db, sent_sql) == target, 3600, "every first-step send")
            end = time.monotonic()
        cpu_web, cpu_worker = tree_cpu(web.pid) - cpu_web0, tree_cpu(worker.pid) - cpu_worker0
        cpu_sandbox = tree_cpu(sandbox.pid) - cpu_sandbox0
        used = shared.used()
        n = args.records
        errors = sum(1 for s in statuses if s != 201)
        print(
            f"records: {n} (+50 warm-up), client threads: {args.concurrency}, "
            f"worker threads: {args.worker_threads}"
        )
        print(f"API: {n / (api_done - begin):.0f} records/s created (201), errors: {errors}")
        print(f"enrollments: {n / (enrolled_at - begin):.0f}/s (first request → last enrollment stored)")
        print(
            f"last first-step send: {end - begin:.1f} s after the first request "
            f"({n / (end - begin):.0f} texts/s)"
        )
        print(
            f"CPU per enrollment (record created + enrolled + texted): web {1000 * cpu_web / n:.1f} ms, "
            f"worker {1000 * cpu_worker / n:.1f} ms, sandbox {1000 * cpu_sandbox / n:.1f} ms, "
            f"postgresql {1000 * used.get('postgresql', 0) / n:.1f} ms, "
            f"redis {1000 * used.get('redis', 0) / n:.1f} ms (the last two: every database on the host)"
        )
        texted = psql(args.db, "SELECT count(*) FROM messaging_message WHERE direction = 'outbound'")
        print(f"enrollments: {psql(args.db, enrolled_sql)}, outbound texts: {texted}")
        print(f"host: load average {load_before[0]:.2f} before; at the end {phase.describe()}")
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
