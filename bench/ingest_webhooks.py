"""Benchmark: signed Twilio webhooks (inbound texts + status callbacks) into the production stack.

Production mode only (PostgreSQL, Redis): uvicorn with ``--workers`` processes serving the app (settings
``bench.ingest_settings``: the app plus a trivial empty-TwiML view for the baseline), one Celery worker
processing the stored inbound events, and a load generator in this process (asyncio + uvloop, raw HTTP/1.1
keep-alive on loopback, ``--connections`` concurrent connections, each request signed with the account's
token over ``PUBLIC_BASE_URL`` exactly as Twilio signs).

    SECRET_KEY=x QUICKSEND_ENCRYPTION_KEYS=3q2Bpd0mRkpq6GaoBGHZOXHU4_lpr6wwzoR4QgP5G6s= \
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/qs_receive_bench REDIS_URL=redis://127.0.0.1:6379/8 \
    python bench/ingest_webhooks.py --seconds 60 --baseline-seconds 20 --workers 2 --connections 24 \
        --worker-nice 10 --drain-timeout 120

Phases: (1) two baselines for ``--baseline-seconds`` each, same server, same bytes answered:
``POST /bench/empty-twiml``, a trivial Django view (the whole middleware stack), and ``POST
/bench/lean-empty-twiml``, answered at the ASGI level with no work (bench/ingest_asgi.py: the server's own
ceiling); (2) the webhooks for ``--seconds``, half ``/api/incoming-sms`` (a new MessageSid each, from 2,000
customer numbers) and half ``/api/status-callback?m=<id>`` (``sent`` then ``delivered`` for pre-created
outbound messages); (3) checks that every acknowledged webhook is stored (acknowledged means stored),
then waits for the worker to process every stored event (inbound and status; at most ``--drain-timeout``
seconds) and counts: every acknowledged inbound webhook must become a stored message, every acknowledged
``delivered`` a delivered message. Each phase also prints the CPU time each process role spent per request
(bench/machine.py).
Prints requests/s, p50/p99 latency, errors, stored vs sent, and the ratio ingest/baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.ingest_settings"
# Own Celery queue and cache prefix, so nothing else queued in this Redis database is mixed in.
os.environ["PYTEST_XDIST_WORKER"] = "bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup(status_messages: int) -> dict:
    """A fresh organization with an account (known token), a number and outbound messages awaiting status."""
    import django

    django.setup()
    from django.core.management import call_command

    from messaging.models import STATUS_RANK, Conversation, Message

    call_command("migrate", verbosity=0)
    from messaging.twilio.ingest import pending_counts

    left = sum(pending_counts().values())
    if left:
        raise SystemExit(
            f"{left} webhook events of an earlier run still wait for a worker; they would be processed "
            "during this run and skew it. Drop this benchmark database (or let a worker finish), then run "
            "again."
        )
    from benchdb import bench_line

    org, account, number, token = bench_line("bench")
    conversations = Conversation.objects.bulk_create(
        [
            Conversation(organization=org, phone_number=number, customer_number=f"+1202{7000000 + i}")
            for i in range(500)
        ]
    )
    messages = []
    for start in range(0, status_messages, 5000):
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
                for i in range(start, min(status_messages, start + 5000))
            ]
        )
    return {
        "org_id": org.pk,
        "account_sid": account.account_sid,
        "token": token,
        "number": number.phone_number,
        "messages": [(m.pk, m.sid, m.to_number) for m in messages],
    }


class Requests:
    """Makes the signed requests: inbound and status callbacks alternately (or the baseline view)."""

    def __init__(self, world: dict, base_url: str, host_header: str):
        from twilio.request_validator import RequestValidator

        self.world = world
        self.base_url = base_url
        self.host = host_header
        self.validator = RequestValidator(world["token"])
        self.turn = 0
        self.status_queue = [
            (mid, sid, to, st) for mid, sid, to in world["messages"] for st in ("sent", "delivered")
        ]
        self.status_next = 0
        self.rng = random.Random(7)

    def _raw(self, path_qs: str, params: dict, signed: bool = True) -> bytes:
        body = urlencode(params).encode()
        headers = [
            f"POST {path_qs} HTTP/1.1",
            f"Host: {self.host}",
            "Content-Type: application/x-www-form-urlencoded",
            "User-Agent: TwilioProxy/1.1",
            f"Content-Length: {len(body)}",
        ]
        if signed:
            headers.append(
                "X-Twilio-Signature: " + self.validator.compute_signature(self.base_url + path_qs, params)
            )
        return ("\r\n".join(headers) + "\r\n\r\n").encode() + body

    def baseline(self) -> tuple[str, bytes, object]:
        return "baseline", self._raw("/bench/empty-twiml", self._inbound_params(), signed=True), None

    def lean_baseline(self) -> tuple[str, bytes, object]:
        return "baseline", self._raw("/bench/lean-empty-twiml", self._inbound_params(), signed=True), None

    def _inbound_params(self) -> dict:
        sid = "SM" + secrets.token_hex(16)
        customer = f"+1310{5550000 + self.rng.randrange(2000)}"
        return {
            "ToCountry": "US",
            "ToState": "CA",
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "ToCity": "SAN FRANCISCO",
            "FromZip": "90210",
            "SmsSid": sid,
            "FromState": "CA",
            "SmsStatus": "received",
            "FromCity": "LOS ANGELES",
            "Body": "Hi, is the 2-bedroom on Elm Street still available? Could I see it on Saturday?",
            "FromCountry": "US",
            "To": self.world["number"],
            "ToZip": "94105",
            "NumSegments": "1",
            "MessageSid": sid,
            "AccountSid": self.world["account_sid"],
            "From": customer,
            "ApiVersion": "2010-04-01",
        }

    def webhook(self) -> tuple[str, bytes, object]:
        self.turn += 1
        if self.turn % 2 or self.status_next >= len(self.status_queue):
            params = self._inbound_params()
            return "inbound", self._raw("/api/incoming-sms", params), params["MessageSid"]
        mid, sid, to, status = self.status_queue[self.status_next]
        self.status_next += 1
        params = {
            "SmsSid": sid,
            "SmsStatus": status,
            "MessageStatus": status,
            "To": to,
            "MessageSid": sid,
            "AccountSid": self.world["account_sid"],
            "From": self.world["number"],
            "ApiVersion": "2010-04-01",
        }
        if status == "delivered":
            params["RawDlrDoneDate"] = "2611220900"
        return f"status_{status}", self._raw(f"/api/status-callback?m={mid}", params), mid


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, close = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection" and value.strip().lower() == "close":
            close = True
    if length:
        await reader.readexactly(length)
    return status, close


async def load(host: str, port: int, seconds: float, connections: int, make) -> dict:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    acked: dict[str, list] = {}
    deadline = time.perf_counter() + seconds

    async def one_connection() -> None:
        reader = writer = None
        while time.perf_counter() < deadline:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            kind, raw, key = make()
            started = time.perf_counter()
            try:
                writer.write(raw)
                status, close = await read_response(reader)
            except (OSError, asyncio.IncompleteReadError) as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                writer.close()
                writer = None
                continue
            latencies.append(time.perf_counter() - started)
            if status == 200:
                acked.setdefault(kind, []).append(key)
            else:
                errors[f"HTTP {status}"] = errors.get(f"HTTP {status}", 0) + 1
            if close:
                writer.close()
                writer = None
        if writer is not None:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(one_connection() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else 0.0

    return {
        "requests": len(latencies),
        "elapsed": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": latencies[-1] * 1000 if latencies else 0.0,
        "errors": errors,
        "acked": acked,
    }


class Prepared:
    """The requests of a phase, made (and signed) before its clock starts: on this one machine the load
    generator shares the cores with the server, and Twilio's signing is Twilio's work, not ours. When the list
    runs out, requests are made on the fly (``extra`` counts them)."""

    def __init__(self, make, count: int) -> None:
        self.make = make
        self.items = [make() for _ in range(count)]
        self.items.reverse()
        self.extra = 0

    def __call__(self):
        if self.items:
            return self.items.pop()
        self.extra += 1
        return self.make()


def wait_until(predicate, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.5)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--baseline-seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--status-messages", type=int, default=40_000)
    parser.add_argument(
        "--prepare-rate",
        type=int,
        default=2500,
        help="requests made and signed before each phase, per second of the phase (more are made on the fly)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=1800,
        help="seconds to wait for the worker to process every stored event before giving up",
    )
    parser.add_argument(
        "--no-celery", action="store_true", help="do not start a Celery worker (one runs already)"
    )
    parser.add_argument(
        "--worker-nice",
        type=int,
        default=0,
        help="run the Celery worker at this niceness (on one machine: ingest first, processing after)",
    )
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        raise SystemExit("production mode only: set DATABASE_URL and REDIS_URL")

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    os.environ.update(
        {
            "PUBLIC_BASE_URL": base_url,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DEBUG": "0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    from benchdb import ensure_database

    ensure_database(os.environ["DATABASE_URL"])
    print(f"setting up ({args.status_messages} outbound messages awaiting status)…", flush=True)
    world = setup(args.status_messages)
    env = dict(os.environ)
    logs = ROOT / "var"
    logs.mkdir(exist_ok=True)
    server_cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.ingest_asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(args.workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
        "--lifespan",
        "off",
    ]
    procs = []
    with open(logs / "bench-ingest-uvicorn.log", "wb") as log:
        procs.append(subprocess.Popen(server_cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    if not args.no_celery:
        worker_cmd = [sys.executable, "-m", "celery", "-A", "quicksend", "worker", "--pool", "solo"]
        if args.worker_nice:
            worker_cmd = ["nice", "-n", str(args.worker_nice), *worker_cmd]
        worker_cmd += [
            "--loglevel",
            "WARNING",
            "-Q",
            "quicksendbench",
            "--without-gossip",
            "--without-mingle",
        ]
        with open(logs / "bench-ingest-celery.log", "wb") as log:
            procs.append(
                subprocess.Popen(worker_cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            )
    try:
        import requests

        def up() -> bool:
            try:
                return requests.get(base_url + "/livez", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_until(up, 60, "uvicorn")
        import uvloop

        maker = Requests(world, base_url, f"127.0.0.1:{port}")
        print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores shared with other work)", flush=True)
        from machine import Phase, ProcessCPU

        def phase(make, seconds: float):
            prepared = Prepared(make, int(args.prepare_rate * seconds))
            with Phase() as machine, ProcessCPU() as cpu:
                result = uvloop.run(load("127.0.0.1", port, seconds, args.connections, prepared))
            result["machine"] = f"{machine.describe()}; made on the fly: {prepared.extra}"
            result["cpu"] = cpu.per(result["requests"])
            return result

        uvloop.run(load("127.0.0.1", port, 3, args.connections, maker.baseline))  # warm-up
        baseline = phase(maker.baseline, args.baseline_seconds)
        lean = phase(maker.lean_baseline, args.baseline_seconds)
        uvloop.run(load("127.0.0.1", port, 3, args.connections, maker.webhook))  # warm-up (thread pools)
        ingest = phase(maker.webhook, args.seconds)

        from messaging.models import InboundEvent, Message, StatusEvent
        from messaging.twilio.ingest import pending_counts

        def line(name: str, r: dict) -> str:
            return (
                f"{name:9} {r['requests']:7d} requests in {r['elapsed']:.1f} s = {r['rps']:7.0f} req/s  "
                f"p50 {r['p50_ms']:.1f} ms  p99 {r['p99_ms']:.1f} ms  max {r['max_ms']:.0f} ms  "
                f"errors {r['errors'] or 0}"
            )

        for name, result, what in (
            ("baseline", baseline, "trivial Django view; "),
            ("lean", lean, "answered at the ASGI level, no work; "),
            ("webhooks", ingest, ""),
        ):
            print(line(name, result) + f"   ({what}{result['machine']})")
            print(f"{'':9} {result['cpu']}", flush=True)
        print(
            f"ratio webhooks/baseline: {ingest['rps'] / baseline['rps']:.2f} (trivial Django view), "
            f"{ingest['rps'] / lean['rps']:.2f} (ASGI-level answer)"
        )
        backlog = sum(pending_counts().values())
        print(f"events waiting for the worker when the load ended: {backlog}", flush=True)
        inbound_sids = ingest["acked"].get("inbound", [])
        delivered_ids = set(ingest["acked"].get("status_delivered", []))
        sent_ids = set(ingest["acked"].get("status_sent", []))
        status_acked = len(delivered_ids) + len(sent_ids)
        # Acknowledged means stored: every acknowledged webhook must be a row now, processed or not.
        stored_events = set(
            InboundEvent.objects.filter(organization_id=world["org_id"]).values_list("message_sid", flat=True)
        )
        applied_before = Message.objects.filter(pk__in=delivered_ids | sent_ids, status_rank__gte=40).count()
        status_rows = StatusEvent.objects.filter(organization_id=world["org_id"]).count()
        print(
            f"stored when acknowledged: inbound {len(inbound_sids)} acknowledged, "
            f"{len(set(inbound_sids) & stored_events)} stored as events "
            f"(missing {len(set(inbound_sids) - stored_events)}); status callbacks {status_acked} "
            f"acknowledged, {status_rows} waiting + applied to {applied_before} messages",
            flush=True,
        )
        started = time.monotonic()
        try:
            wait_until(lambda: not any(pending_counts().values()), args.drain_timeout, "the worker")
        except SystemExit:
            pass
        waited = time.monotonic() - started
        left = sum(pending_counts().values())
        stored_sids = set(
            Message.objects.filter(organization_id=world["org_id"], direction="inbound").values_list(
                "sid", flat=True
            )
        )
        delivered = Message.objects.filter(pk__in=delivered_ids, status="delivered").count()
        sent_ok = Message.objects.filter(pk__in=sent_ids, status_rank__gte=40).count()
        done = "all processed" if not left else f"{left} still waiting (--drain-timeout)"
        print(
            f"after the load: {done} {waited:.1f} s later, {(backlog - left) / waited if waited else 0:.1f} "
            f"events/s while catching up; inbound acknowledged {len(inbound_sids)}, stored as messages "
            f"{len(set(inbound_sids) & stored_sids)}"
        )
        print(
            f"status callbacks acknowledged: sent {len(sent_ids)} (applied {sent_ok}), "
            f"delivered {len(delivered_ids)} (messages delivered {delivered})"
        )
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
