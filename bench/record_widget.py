"""The texting widget in real browser pages, against the production server (uvicorn, Redis channel layer, a
Celery worker):

1. **First paint of a long thread**: a lead with a 5,000-message thread; the time from the start of the
   page's navigation to the first message drawn in the widget (``--loads`` page loads, one at a time).
2. **Inbound text → painted**: ``--pages`` browser pages (each its own member and session) open on the
   lead; for each of ``--texts`` signed inbound webhooks posted to ``/api/incoming-sms``, the time from the
   moment the request is sent to the moment the text's bubble is added to the page, in every page. The whole
   production path is inside: the webhook fast path, the drain task on the worker, processing, the publish
   through Redis, the socket, the widget's rendering.
   Also printed: when each text's frame reached each page's socket (before the widget draws it), and per
   text the first page to paint it and the spread to the last (how much is the fan-out to many pages).

Times in the pages are read with ``performance.timeOrigin + performance.now()`` and compared with the
bench's ``time.time()`` (one machine, one clock). Run by hand (production mode)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/qs_record_widget REDIS_URL=redis://127.0.0.1:6379/9 \\
    SECRET_KEY=x QUICKSEND_ENCRYPTION_KEYS=... python bench/record_widget.py [--pages 20 --texts 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ["PYTEST_XDIST_WORKER"] = "bench"  # own Celery queue and cache prefix

# Runs in each page before its own scripts: note when the first message bubble and each text's bubble
# appear (the widget adds them to the DOM; the frame after is when they are on screen).
PAGE_PROBE = """
window.__qsPainted = {};
window.__qsArrived = {};
const QsSocket = window.WebSocket;
window.WebSocket = class extends QsSocket {
  constructor(...args) {
    super(...args);
    this.addEventListener('message', (event) => {
      const at = performance.timeOrigin + performance.now();
      const found = /Inbound \\d+ at the widget \\([0-9a-f]+\\)/.exec(event.data);
      if (found && !(found[0] in window.__qsArrived)) window.__qsArrived[found[0]] = at;
    });
  }
};
new MutationObserver((records) => {
  for (const record of records) {
    for (const node of record.addedNodes) {
      if (!(node instanceof HTMLElement)) continue;
      const bubbles = node.matches('.qs-msg') ? [node] : [...node.querySelectorAll('.qs-msg')];
      for (const bubble of bubbles) {
        const body = bubble.querySelector('.qs-body');
        const key = body ? body.textContent : '';
        if (window.__qsFirstMessage === undefined) {
          requestAnimationFrame(() => { window.__qsFirstMessage = performance.now(); });
        }
        if (key && !(key in window.__qsPainted)) {
          window.__qsPainted[key] = -1;
          requestAnimationFrame(() => {
            window.__qsPainted[key] = performance.timeOrigin + performance.now();
          });
        }
      }
    }
  }
}).observe(document, { childList: true, subtree: true });
"""


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


def setup(args):
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from crm.models import Lead
    from messaging.inbox.conversations import get_or_create_conversation
    from messaging.models import Message, PhoneNumber, TwilioAccount
    from tenancy.models import Membership, Organization, Role
    from tests.sessions import session_cookie_for

    call_command("migrate", verbosity=0)
    org, _ = Organization.objects.get_or_create(slug="widget-bench", defaults={"name": "Widget bench"})
    User = get_user_model()
    users = []
    for i in range(max(args.pages, 1)):
        user, _ = User.objects.get_or_create(username=f"widget-{i}", defaults={"first_name": f"Agent {i}"})
        Membership.objects.get_or_create(user=user, organization=org, defaults={"role": Role.ADMIN})
        users.append(user)
    account, created = TwilioAccount.objects.get_or_create(
        organization=org, account_sid="AC" + "d" * 32, defaults={"status": "valid"}
    )
    if created:
        account.set_auth_token("z" * 32)
        account.save()
    number, _ = PhoneNumber.objects.get_or_create(
        organization=org,
        account=account,
        sid="PN" + "d" * 32,
        defaults={"phone_number": "+14155550998", "label": "Bench line", "sms_capable": True},
    )
    customer = "+12025550998"
    lead, _ = Lead.objects.get_or_create(
        organization=org, first_name="Long", last_name="Thread", defaults={"mobile_phone": customer}
    )
    conversation, _ = get_or_create_conversation(number, customer)
    have = Message.objects.filter(conversation=conversation).count()
    if have < args.thread:
        Message.objects.bulk_create(
            [
                Message(
                    organization=org,
                    conversation=conversation,
                    account=account,
                    direction="inbound" if n % 2 else "outbound",
                    source="customer" if n % 2 else "agent",
                    status="received" if n % 2 else "delivered",
                    from_number=customer if n % 2 else number.phone_number,
                    to_number=number.phone_number if n % 2 else customer,
                    body=f"History message {n}: about the viewing, the price and the keys.",
                    sender=None if n % 2 else users[0],
                )
                for n in range(have, args.thread)
            ],
            batch_size=1000,
        )
        with connection.cursor() as cursor:  # spread them over the past weeks, one every 5 minutes
            cursor.execute(
                "UPDATE messaging_message SET created_at = %s - (%s - id) * interval '5 minutes' "
                "WHERE conversation_id = %s",
                [
                    timezone.now(),
                    Message.objects.filter(conversation=conversation).order_by("-id")[0].id,
                    conversation.pk,
                ],
            )
    cookies = [session_cookie_for(u, org) for u in users]
    return lead.get_absolute_url(), cookies, account, number, customer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--texts", type=int, default=20)
    parser.add_argument("--loads", type=int, default=20, help="page loads for the first-paint measurement")
    parser.add_argument("--thread", type=int, default=5000, help="messages in the record's thread")
    parser.add_argument("--gap", type=float, default=0.3, help="seconds between inbound texts")
    parser.add_argument("--port", type=int, default=8471)
    args = parser.parse_args()

    from benchdb import ensure_database

    ensure_database(os.environ["DATABASE_URL"])
    os.environ.update(
        {"ALLOWED_HOSTS": "127.0.0.1,localhost", "PUBLIC_BASE_URL": f"http://127.0.0.1:{args.port}"}
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quicksend.settings")
    path, cookies, account, number, customer = setup(args)

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "quicksend.asgi:application", "--host", "127.0.0.1"]
            + ["--port", str(args.port), "--lifespan", "off", "--log-level", "warning", "--no-access-log"],
            cwd=ROOT,
            env=env,
        ),
        subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "quicksend", "worker", "--pool", "solo"]
            + ["--loglevel", "WARNING", "-Q", "quicksendbench", "--without-gossip", "--without-mingle"],
            cwd=ROOT,
            env=env,
        ),
    ]
    from live_push import Webhook
    from machine import Phase

    base = f"http://127.0.0.1:{args.port}"
    try:
        import requests

        for _ in range(150):
            try:
                if requests.get(base + "/livez", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        with Phase() as phase:
            first_paints, painted, spreads, arrived = run_browsers(
                args,
                base,
                path,
                cookies,
                Webhook(account.account_sid, "z" * 32, number.phone_number, customer, args.port),
            )
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=15)
    print(f"({phase.describe()})")
    print(
        f"first paint of a {args.thread}-message thread, {len(first_paints)} loads: "
        f"p50 {statistics.median(first_paints):.0f} ms, p95 {_pct(first_paints, 0.95):.0f} ms, "
        f"max {max(first_paints):.0f} ms"
    )
    print(
        f"inbound webhook sent → painted in {args.pages} pages, {args.texts} texts ({len(painted)} paints): "
        f"p50 {statistics.median(painted):.0f} ms, p99 {_pct(painted, 0.99):.0f} ms, "
        f"max {max(painted):.0f} ms"
    )
    if arrived:
        print(
            f"  frame arrived on the page's socket ({len(arrived)}): "
            f"p50 {statistics.median(arrived):.0f} ms, "
            f"p99 {_pct(arrived, 0.99):.0f} ms, max {max(arrived):.0f} ms"
        )
    firsts = [low for low, _ in spreads]
    fans = [high - low for low, high in spreads]
    print(
        f"  per text, first page painted: p50 {statistics.median(firsts):.0f} ms, max {max(firsts):.0f} ms; "
        f"first → last page: p50 {statistics.median(fans):.0f} ms, max {max(fans):.0f} ms"
    )


def _post(webhook, raw: bytes) -> int:
    # Playwright's sync API owns this thread's event loop: the webhook goes out on a plain socket.
    import socket

    with socket.create_connection(("127.0.0.1", webhook.port)) as conn:
        conn.sendall(raw)
        return int(conn.makefile("rb").readline().split()[1])


def run_browsers(args, base, path, cookies, webhook):
    import secrets

    from playwright.sync_api import sync_playwright

    from tests.plugins.browser import CHROMIUM_ARGS, chromium_path

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        # 1. First paint, one load at a time (the first load warms the server and is not counted).
        context = browser.new_context()
        context.add_cookies([{"name": "sessionid", "value": cookies[0], "url": base}])
        context.add_init_script(PAGE_PROBE)
        page = context.new_page()
        first_paints = []
        for n in range(args.loads + 1):
            page.goto(base + path)
            deadline = time.monotonic() + 30
            value = None
            while value is None and time.monotonic() < deadline:
                value = page.evaluate(
                    "window.__qsFirstMessage === undefined ? null : window.__qsFirstMessage"
                )
                if value is None:
                    page.wait_for_timeout(20)
            if n:
                first_paints.append(value)
        context.close()

        # 2. Inbound texts painted in every open page.
        pages = []
        for key in cookies[: args.pages]:
            ctx = browser.new_context()
            ctx.add_cookies([{"name": "sessionid", "value": key, "url": base}])
            ctx.add_init_script(PAGE_PROBE)
            pg = ctx.new_page()
            pg.goto(base + path)
            pg.locator(".qs-msg").first.wait_for(timeout=30_000)
            pages.append(pg)
        for pg in pages:  # subscribed once the socket said so; a warm-up text proves it for every page
            pg.wait_for_timeout(50)
        run = secrets.token_hex(3)  # this run's texts, whatever earlier runs left in the thread
        _post(webhook, webhook.request(f"warm-up {run}"))
        for pg in pages:
            pg.locator(".qs-body", has_text=f"warm-up {run}").wait_for(timeout=30_000)
        sent = {}
        for i in range(args.texts):
            body = f"Inbound {i} at the widget ({run})"
            raw = webhook.request(body)
            sent[body] = time.time() * 1000
            assert _post(webhook, raw) == 200
            pages[0].wait_for_timeout(args.gap * 1000)
        painted = []
        per_text = {body: [] for body in sent}
        arrived = []
        for pg in pages:
            last = f"Inbound {args.texts - 1} at the widget ({run})"
            pg.locator(".qs-body", has_text=last).wait_for(timeout=30_000)
            pg.wait_for_timeout(50)
            seen = pg.evaluate("window.__qsPainted")
            arrived_in_page = pg.evaluate("window.__qsArrived")
            arrived += [arrived_in_page[body] - at for body, at in sent.items() if body in arrived_in_page]
            for body, at in sent.items():
                if seen.get(body, -1) > 0:
                    painted.append(seen[body] - at)
                    per_text[body].append(seen[body] - at)
        browser.close()
    spreads = [(min(v), max(v)) for v in per_text.values() if v]
    return first_paints, painted, spreads, arrived


if __name__ == "__main__":
    main()
