"""Drip campaigns at the carriers' speed, production mode: N people over K sandbox numbers, each number
given its own rate (segments/s), sent by the real dispatcher (Celery beat ticking it every second) and a
Celery worker, to the standalone sandbox.

    python bench/campaign_dispatch.py [--people 2000] [--numbers 10] [--rate 10] [--fair]
        [--db qs_campaign_bench] [--redis redis://127.0.0.1:6379/11] [--worker-threads 8] [--workers 1]

``--fair``: three campaigns of two organizations at once (organization A: two campaigns sharing its numbers;
organization B: one campaign on its own numbers), to see each get its share.

The sandbox's own sender queue is raised out of the way, so its accept times (``date_created``, one-second
resolution) are our hand-over times. Prints, from those times: the sustained rate against the allowed one
(numbers × rate), the seconds in which any sender went over its rate (must be 0), per-campaign shares; and
from /proc: worker + beat CPU per message and the worker's memory (RSS) over the run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from send_path import PY, ROOT, _ok, free_port, psql, stack_env, tree_cpu, wait_for  # noqa: E402

AREA_CODES = {
    "212": "America/New_York",
    "312": "America/Chicago",
    "303": "America/Denver",
    "213": "America/Los_Angeles",
    "907": "America/Anchorage",
    "808": "Pacific/Honolulu",
    "671": "Pacific/Guam",  # Guam and Puerto Rico cover most of the hours no US state is in daytime
    "787": "America/Puerto_Rico",
}

SETUP = """
import django, json, sys
django.setup()
from django.contrib.auth import get_user_model
from campaigns.drip.models import SenderRate
from campaigns.drip.services import add_recipients, do_create_campaign, do_start_campaign
from messaging.models import PhoneNumber, TwilioAccount
from messaging.services import throttle
from tenancy.models import Membership, Organization, Role
spec = json.loads(sys.stdin.read())
out = []
for o, org_spec in enumerate(spec["orgs"]):
    org = Organization.objects.create(name=f"Bench {o}", slug=f"bench-{o}-{org_spec['sid'][-6:]}")
    user = get_user_model().objects.create_user(username=f"bench-{o}-{org_spec['sid'][-6:]}", password="x")
    Membership.objects.create(organization=org, user=user, role=Role.ADMIN)
    account = TwilioAccount(organization=org, account_sid=org_spec["sid"], status="valid")
    account.set_auth_token(org_spec["token"])
    account.save()
    numbers = []
    for n in org_spec["numbers"]:
        pn = PhoneNumber.objects.create(organization=org, account=account, sid=n["sid"],
            phone_number=n["phone_number"], number_type="local", sms_capable=True, mms_capable=True)
        SenderRate.objects.create(organization=org, number=pn, segments_per_second=spec["rate"])
        throttle.set_number_rate(pn.pk, spec["rate"])
        numbers.append(pn.pk)
    for c, people in enumerate(org_spec["campaigns"]):
        campaign = do_create_campaign(org, user, name=f"Bench {o}.{c}", senders=numbers,
            steps=[{"body": "Acme: spring sale, {{name}}!"}], window_clock="recipient",
            window_start="00:00", window_end="23:59", brand_name="Acme")
        add_recipients(campaign, [{"phone": p, "merge": {"name": f"P{i}"}} for i, p in enumerate(people)])
        out.append(campaign.pk)
for campaign_id in out:
    from campaigns.drip.models import Campaign
    do_start_campaign(Campaign.objects.get(pk=campaign_id), None)
print(json.dumps(out))
"""


# Mobile ranges elsewhere, for the hours no North American area is in daytime (prefix + 6 digits is a valid
# mobile number there: the recipients' time zone comes from the number).
ABROAD = {
    "+4915100": "Europe/Berlin",
    "+447700": "Europe/London",
    "+919800": "Asia/Kolkata",
}


def daytime_prefix() -> str:
    """A prefix of numbers whose local time is between 9:00 and 19:00 now (quiet hours are 8:00–21:00)."""
    now = datetime.now(UTC)
    for code, zone in AREA_CODES.items():
        if 9 <= now.astimezone(ZoneInfo(zone)).hour < 19:
            return f"+1{code}"
    for prefix, zone in ABROAD.items():
        if 9 <= now.astimezone(ZoneInfo(zone)).hour < 19:
            return prefix
    raise SystemExit("no area in daytime now")


def person_number(prefix: str, n: int) -> str:
    if prefix.startswith("+1"):
        return f"{prefix}{200 + n // 10000}{n % 10000:04d}"  # a valid exchange (200–999)
    return f"{prefix}{n:06d}"


def start(cmd: list[str], env: dict, log: str) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)


def rss_mb(pid: int) -> float:
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _children(pid: int) -> list[int]:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(k) for k in kids]


def _host_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all the host's CPUs so far (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return float(sum(fields) - idle), float(sum(fields))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--numbers", type=int, default=10)
    parser.add_argument("--rate", type=float, default=10)
    parser.add_argument("--fair", action="store_true")
    parser.add_argument("--db", default="qs_campaign_bench")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--worker-threads", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="Celery worker processes")
    parser.add_argument("--timeline", action="store_true", help="print the texts accepted in each 5 s")
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
    import redis

    redis.Redis.from_url(args.redis).flushdb()

    procs = []
    try:
        cmd = [PY, "manage.py", "twilio_sandbox", "--host", "127.0.0.1", "--port", str(sandbox_port)]
        procs.append(start(cmd, env, "/tmp/bench-campaign-sandbox.log"))
        wait_for(lambda: _ok(sandbox_url + "/control/health"), 30, "the sandbox")
        prefix = daytime_prefix()
        org_count = 2 if args.fair else 1
        per_org_numbers = args.numbers // org_count
        spec = {"rate": args.rate, "orgs": []}
        sids = []
        person = 0
        for o in range(org_count):
            account = requests.post(
                sandbox_url + "/control/accounts", json={"status": "active"}, timeout=10
            ).json()
            sid = account["sid"]
            sids.append(sid)
            requests.post(
                f"{sandbox_url}/control/accounts/{sid}/behaviour",
                json={"rates": {"local": 100000}, "delay_ms": [5, 40], "concurrency_limit": 1000},
                timeout=10,
            )
            numbers = [
                requests.post(
                    f"{sandbox_url}/control/accounts/{sid}/numbers",
                    json={"phone_number": f"+1415555{o}{i:03d}", "type": "local"},
                    timeout=10,
                ).json()
                for i in range(per_org_numbers)
            ]
            campaigns = 2 if args.fair and o == 0 else 1
            share = args.people // (3 if args.fair else 1)
            people_lists = []
            for _ in range(campaigns):
                people_lists.append([person_number(prefix, person + i) for i in range(share)])
                person += share
            spec["orgs"].append({"sid": sid, "token": account["auth_token"], "numbers": numbers,
                                 "campaigns": people_lists})  # fmt: skip
        # The spec on standard input: 100,000 numbers are too long for a command line.
        setup = subprocess.run([PY, "-c", SETUP], input=json.dumps(spec), cwd=ROOT, env=env,
                               capture_output=True, text=True)  # fmt: skip
        if setup.returncode:
            raise SystemExit(setup.stderr[-3000:])
        campaign_ids = json.loads(setup.stdout.strip().splitlines()[-1])
        total = sum(len(c) for org in spec["orgs"] for c in org["campaigns"])

        uvicorn = [PY, "-m", "uvicorn", "quicksend.asgi:application", "--host", "127.0.0.1"]
        uvicorn += ["--port", str(web_port), "--lifespan", "off", "--workers", "1", "--no-access-log"]
        procs.append(start(uvicorn, env, "/tmp/bench-campaign-web.log"))
        celery = [PY, "-m", "celery", "-A", "quicksend", "worker", "--pool", "threads"]
        celery += ["--concurrency", str(args.worker_threads), "--loglevel", "WARNING", "-Q", "quicksend"]
        celery += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        workers = [
            start([*celery, "-n", f"bench{w}@%h"], env, f"/tmp/bench-campaign-worker-{w}.log")
            for w in range(args.workers)
        ]
        procs += workers
        wait_for(lambda: _ok(f"http://127.0.0.1:{web_port}/livez"), 60, "uvicorn")
        beat_cmd = [PY, "-m", "celery", "-A", "quicksend", "beat", "--loglevel", "WARNING"]
        beat_cmd += ["--schedule", f"/tmp/bench-campaign-beat-{sandbox_port}"]
        cpu0 = sum(tree_cpu(w.pid) for w in workers)
        others0 = {name: tree_cpu(p.pid) for name, p in (("sandbox", procs[0]), ("web", procs[1]))}
        host0 = _host_busy()
        begin = time.monotonic()
        beat = start(beat_cmd, env, "/tmp/bench-campaign-beat.log")
        procs.append(beat)
        memory: list[float] = []
        progress: list[tuple[float, int]] = []  # (worker + beat CPU seconds, texts handed over)
        stop = threading.Event()
        sent_sql = "SELECT count(*) FROM messaging_message WHERE sid IS NOT NULL"

        def sample() -> None:
            while not stop.wait(5):
                memory.append(sum(rss_mb(w.pid) for w in workers))
                busy = sum(tree_cpu(w.pid) for w in workers) + tree_cpu(beat.pid)
                progress.append((busy, int(psql(args.db, sent_sql))))

        threading.Thread(target=sample, daemon=True).start()
        wait_for(lambda: psql(args.db, sent_sql) == str(total), 3 * total / (args.rate * args.numbers) + 300,
                 "every text handed to the sandbox")  # fmt: skip
        elapsed = time.monotonic() - begin
        stop.set()
        cpu = sum(tree_cpu(w.pid) for w in workers) - cpu0 + tree_cpu(beat.pid)
        others = {
            name: tree_cpu(p.pid) - others0[name] for name, p in (("sandbox", procs[0]), ("web", procs[1]))
        }
        host = _host_busy()
        host_share = (host[0] - host0[0]) / max(1e-9, host[1] - host0[1])

        per_second: dict[str, Counter] = defaultdict(Counter)
        number_owner = {}
        stamps = []
        accepted_at: dict[str, float] = {}
        for sid in sids:
            for m in requests.get(f"{sandbox_url}/control/accounts/{sid}/messages", timeout=60).json()[
                "messages"
            ]:
                second = int(parsedate_to_datetime(m["date_created"]).timestamp())
                accepted_at[m["sid"]] = float(m["history"][0][1])
                per_second[m["from"]][second] += int(m.get("num_segments") or 1)
                stamps.append(second)
                number_owner[m["from"]] = sid
        if args.timeline:
            windows = Counter((s - min(stamps)) // 5 for s in stamps)
            print("accepted per 5 s: " + " ".join(str(windows[w]) for w in range(max(windows) + 1)))
        # From our claim (just after the sender's allowance granted the text) to the sandbox accepting it.
        claimed = psql(
            args.db,
            "SELECT sid, extract(epoch FROM handed_over_at), from_number, num_segments "
            "FROM messaging_message WHERE sid IS NOT NULL AND handed_over_at IS NOT NULL",
        )
        rows = [line.split("|") for line in claimed.splitlines() if line]
        lags = sorted(accepted_at[sid] - float(at) for sid, at, *_ in rows if sid in accepted_at)
        # The same count by our own clock: the second each text was handed over in (its claim, just after
        # the throttle granted it).
        ours: dict[str, Counter] = defaultdict(Counter)
        for _sid, at, sender, segments in rows:
            ours[sender][int(float(at))] += int(segments or 1)
        over_ours = sum(1 for counts in ours.values() for n in counts.values() if n > args.rate)
        print(f"seconds over a sender's rate by the hand-over clock: {over_ours}; busiest "
              f"{max((n for c in ours.values() for n in c.values()), default=0)}")  # fmt: skip
        if lags:
            pick = lambda q: 1000 * lags[min(len(lags) - 1, int(q * len(lags)))]  # noqa: E731
            print(f"claim to sandbox accept: p50 {pick(0.5):.0f} ms, p90 {pick(0.9):.0f} ms, "
                  f"p99 {pick(0.99):.0f} ms, max {1000 * lags[-1]:.0f} ms")  # fmt: skip
        over = sum(1 for counts in per_second.values() for n in counts.values() if n > args.rate)
        first, last = min(stamps), max(stamps)
        # Sustained: the seconds strictly inside the run (the first and last are partial).
        inner = [s for s in stamps if first < s < last]
        span = max(1, last - first - 1)
        allowed = args.rate * args.numbers
        rate = len(inner) / span
        print(f"people: {total}, numbers: {args.numbers} at {args.rate:g} segments/s each "
              f"({allowed:g}/s allowed), campaigns: {len(campaign_ids)}, "
              f"workers: {args.workers} x {args.worker_threads} threads")  # fmt: skip
        print(f"sustained (sandbox accept times): {rate:.1f} texts/s = "
              f"{100 * rate / allowed:.1f} % of allowed; run {elapsed:.0f} s wall")  # fmt: skip
        print(f"seconds over any sender's rate: {over}; busiest sender-second: "
              f"{max(n for c in per_second.values() for n in c.values())}")  # fmt: skip
        print(f"CPU (worker + beat) per text: {1000 * cpu / total:.1f} ms")
        print(
            "CPU per text elsewhere: "
            + ", ".join(f"{name} {1000 * seconds / total:.1f} ms" for name, seconds in others.items())
            + f"; the host's CPUs were {100 * host_share:.0f} % busy over the run"
        )
        if len(progress) >= 4:
            # CPU per text in each third of the run: flat means the cost does not grow with the backlog.
            thirds = [
                progress[0],
                progress[len(progress) // 3],
                progress[2 * len(progress) // 3],
                progress[-1],
            ]
            costs = [
                f"{1000 * (b[0] - a[0]) / max(1, b[1] - a[1]):.1f}"
                for a, b in zip(thirds, thirds[1:], strict=False)
            ]
            print(f"CPU per text by third of the run (ms): {', '.join(costs)}")
        if memory:
            middle = memory[len(memory) // 2]
            print(f"worker RSS MB: start {memory[0]:.0f}, middle {middle:.0f}, end {memory[-1]:.0f}")
        if len(campaign_ids) > 1:
            shares = psql(
                args.db,
                "SELECT campaign_id, count(*) FROM campaigns_campaignsend s JOIN campaigns_campaign c ON "
                "c.id = s.campaign_id WHERE s.sent_at < (SELECT min(m) FROM (SELECT max(sent_at) m FROM "
                "campaigns_campaignsend GROUP BY campaign_id) x) GROUP BY campaign_id ORDER BY campaign_id",
            )
            print("sends per campaign while all were running: " + shares.replace("\n", "; "))
            until = float(
                psql(
                    args.db,
                    "SELECT extract(epoch FROM min(m)) FROM (SELECT max(sent_at) m FROM "
                    "campaigns_campaignsend GROUP BY campaign_id) x",
                )
            )
            together = [s for s in stamps if first < s < int(until)]
            seconds = max(1, int(until) - first - 1)
            print(f"while all were running: {len(together) / seconds:.1f} texts/s = "
                  f"{100 * len(together) / seconds / allowed:.1f} % of allowed ({seconds} s)")  # fmt: skip
        print(f"host load (1, 5, 15 min): {Path('/proc/loadavg').read_text().split()[:3]}")
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
