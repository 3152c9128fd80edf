"""Webhook ingest: what ``POST /api/incoming-sms`` and ``POST /api/status-callback`` do before they answer,
and the drain tasks that do the rest.

The request path is one function, ``handle_webhook``, shared by the Django views
(``messaging.twilio.webhooks``, what the test client and any WSGI deployment reach) and the ASGI fast path
(``messaging.twilio.webhook_asgi``, what the production server runs). It verifies the signature
(``messaging.twilio.signatures``), checks the form, and stores the event with ONE statement:
``InboundEvent`` (``INSERT … ON CONFLICT (message_sid) DO NOTHING``, so Twilio's retries store
nothing) or ``StatusEvent``. After commit it makes sure a drain task is queued: one Redis
``SET NX`` per event, one Celery message per burst rather than per event (``schedule_drain``).

Drains (``drain_inbound`` / ``drain_status``) claim pending events with a lease (``UPDATE … SET
claimed_until = now() + lease WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)``), so several workers share a
burst without doing an event twice, and an event whose worker died is claimed again when its lease runs out
(the periodic sweep queues a drain for those). Each event is processed in its own transaction, so its live
events go out as soon as it is done, not at the end of the batch.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from datetime import UTC, timedelta

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from messaging.models import InboundEvent, Message, StatusEvent
from messaging.segments import MAX_BODY_CHARACTERS
from messaging.services.status import apply_status
from messaging.twilio.signatures import Form, VerifiedAccount, forget_cached_tokens, public_url_for, verify

log = logging.getLogger(__name__)

# The paths Twilio calls, and which kind of event each stores.
WEBHOOK_PATHS = {"/api/incoming-sms": "inbound", "/api/status-callback": "status"}
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response />'
MESSAGE_SID_RE = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")

# How long a drain may hold an event before another drain may take it over (a worker that died).
LEASE_SECONDS = 120
BATCH = 20
# A drain task stops after this long and queues its successor, so one burst cannot hog a worker forever.
DRAIN_SECONDS = 20.0
MAX_ATTEMPTS = 10

# Added to a stored inbound form whose body was cut (its length before); Twilio's own fields never start so.
BODY_CAPPED_FROM = "QuickSendBodyCappedFrom"

DRAIN_KINDS = ("inbound", "status")


class WebhookResponse:
    __slots__ = ("status", "body", "content_type")

    def __init__(self, status: int, body: bytes, content_type: str) -> None:
        self.status, self.body, self.content_type = status, body, content_type


OK = WebhookResponse(200, EMPTY_TWIML, "text/xml")
FORBIDDEN = WebhookResponse(403, b"Forbidden", "text/plain")


class Event:
    """A verified, well-formed webhook, ready to be stored: its kind and its table row."""

    __slots__ = ("kind", "row")

    def __init__(self, kind: str, row: tuple) -> None:
        self.kind, self.row = kind, row


def check_webhook(kind: str, path: str, query_string: str, form, signature: str) -> Event | WebhookResponse:
    """Verify and check a Twilio webhook without storing anything: the ``Event`` to store, or the answer
    (403) when it is unverifiable or malformed.

    ``kind`` is ``"inbound"`` or ``"status"``; ``path`` and ``query_string`` are what Twilio called (the
    signature covers them); ``form`` is the posted form (a ``Form`` or a ``QueryDict``)."""
    account = verify(public_url_for(path, query_string), form, signature)
    if account is None:
        return FORBIDDEN
    sid = form.get("MessageSid", "")
    if not MESSAGE_SID_RE.match(sid):
        return FORBIDDEN
    if kind == "inbound":
        if not form.get("From") or not form.get("To"):
            return FORBIDDEN
        return inbound_event(account, form.dict())
    status = (form.get("MessageStatus") or form.get("SmsStatus", "")).strip().lower()
    if not status:
        return FORBIDDEN
    raw_id = Form.parse(query_string).get("m", "")
    message_id = int(raw_id) if raw_id.isdigit() and len(raw_id) < 19 else None
    raw_code = form.get("ErrorCode", "")
    error_code = int(raw_code) if raw_code.isdigit() and len(raw_code) < 9 else None
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    row = (account.organization_id, account.account_id, message_id, sid, status[:20], error_code, now)
    return Event(kind, row)


def cap_inbound_body(form: dict[str, str]) -> dict[str, str]:
    """``form`` with its ``Body`` cut to ``MAX_BODY_CHARACTERS``, the length it had kept in
    ``BODY_CAPPED_FROM``; ``form`` itself when the body fits.

    Twilio truncates a longer incoming text to 1,600 characters itself (its error 21617), so a longer body
    never comes from a customer's phone: storing it whole would let whoever holds an account's token fill
    the database (a 200 KB body was stored). Cutting rather than refusing keeps the text if Twilio ever
    counts characters differently (our count, in code points, is never above its)."""
    body = form.get("Body") or ""
    if len(body) <= MAX_BODY_CHARACTERS:
        return form
    log.warning(
        "inbound %s: body of %d characters cut to %d", form.get("MessageSid"), len(body), MAX_BODY_CHARACTERS
    )
    return {**form, "Body": body[:MAX_BODY_CHARACTERS], BODY_CAPPED_FROM: str(len(body))}


def inbound_event(account: VerifiedAccount, form: dict[str, str]) -> Event:
    """The event of a verified inbound webhook (``form``: its fields, one value each; the body capped by
    ``cap_inbound_body``, the one check both webhook paths go through)."""
    form = cap_inbound_body(form)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    row = (account.organization_id, account.account_id, form["MessageSid"], json.dumps(form), now)
    return Event("inbound", row)


def handle_webhook(kind: str, path: str, query_string: str, form, signature: str) -> WebhookResponse:
    """A Twilio webhook's whole request path: verify, check, store, acknowledge (``check_webhook`` then
    ``store_events``). Anything unverifiable or malformed: 403 and nothing stored."""
    checked = check_webhook(kind, path, query_string, form, signature)
    if isinstance(checked, WebhookResponse):
        return checked
    return store_events([checked])[0]


_INBOUND_COLUMNS = "organization_id, account_id, message_sid, payload, received_at, attempts, error"
_STATUS_INSERT_COLUMNS = (
    "organization_id, account_id, message_ref, message_sid, status, error_code, received_at, attempts"
)


def _insert_sql(kind: str, count: int) -> str:
    if kind == "inbound":
        cast = "::jsonb" if connection.vendor == "postgresql" else ""
        values = ", ".join([f"(%s, %s, %s, %s{cast}, %s, 0, '')"] * count)
        return (
            f"INSERT INTO {InboundEvent._meta.db_table} ({_INBOUND_COLUMNS}) VALUES {values} "  # noqa: S608
            "ON CONFLICT (message_sid) DO NOTHING RETURNING id"
        )
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, 0)"] * count)
    return f"INSERT INTO {StatusEvent._meta.db_table} ({_STATUS_INSERT_COLUMNS}) VALUES {values} RETURNING id"  # noqa: S608


def store_events(events: list[Event]) -> list[WebhookResponse]:
    """Store verified webhooks and make sure drains will process them; the answer for each, in order.

    One INSERT per kind for the whole list, in one transaction: several webhooks that arrive together cost
    one round trip and one commit (the ASGI fast path hands its concurrent requests over as one list).
    Inbound events are unique on MessageSid (``ON CONFLICT DO NOTHING``: Twilio's retries store nothing and
    are acknowledged). After commit, one drain is scheduled per kind that stored something. An account
    removed since its token was cached breaks the batch's foreign key: then each event is stored on its own,
    and that account's get 403."""
    if not events:
        return []
    if _stored(events):
        return [OK] * len(events)
    forget_cached_tokens()
    return [OK if _stored([event]) else FORBIDDEN for event in events]


def _stored(events: list[Event]) -> bool:
    """Insert ``events`` in one transaction; False when a foreign key broke it (nothing stored)."""
    try:
        with transaction.atomic():
            _insert_batch(events)
    except IntegrityError:
        return False
    return True


def _insert_batch(events: list[Event]) -> None:
    for kind in DRAIN_KINDS:
        rows = [event.row for event in events if event.kind == kind]
        if rows and _execute_returning(_insert_sql(kind, len(rows)), [v for row in rows for v in row]):
            transaction.on_commit(lambda kind=kind: schedule_drain(kind))


def _execute_returning(sql: str, params: list) -> list:
    """Run one statement with RETURNING: its rows. On PostgreSQL through a server-side binding psycopg cursor
    (parameters sent apart from the text, and the statement prepared once it repeats) instead of Django's
    client-side binding cursor, which quoted every value into the SQL; errors still become Django's."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    import psycopg

    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# --- Drains ------------------------------------------------------------------------------------------------


def _pending_key(kind: str) -> str:
    return f"ingest:drain-queued:{kind}"


def schedule_drain(kind: str) -> None:
    """Make sure a drain task of ``kind`` will run after this point.

    Protocol: the flag ``ingest:drain-queued:<kind>`` is set (``SET NX``) by whoever queues a drain, and
    cleared by the drain before it first looks for work. So when the flag is already set, a drain is queued
    that has not looked yet and will see this event; when it is not, this call sets it and queues one. A lost
    task leaves the flag set until it expires (``LEASE_SECONDS``); the periodic sweep covers that window.
    """
    task = _drain_task(kind)
    if _eager(kind):
        # Embedded mode (and tests that run tasks eagerly): no queue to share, the drain runs here, now. The
        # flag stays out of it: one set by a queued (never consumed) task must not stop this drain.
        task.delay()
        return
    key = _pending_key(kind)
    if _gate_add(key):
        try:
            task.delay()
        except Exception:
            cache.delete(key)  # nothing was queued: the next event must try again
            raise


_redis: tuple[int, object] | None = None


def _gate_add(key: str) -> bool:
    """``cache.add(key, 1, LEASE_SECONDS)``. With Redis, one ``SET NX EX`` on a client kept per process: the
    Django cache builds a client object per call, which was a sixth of the webhook writer's time."""
    global _redis
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return backend.add(key, 1, timeout=LEASE_SECONDS)
    if _redis is None or _redis[0] != os.getpid():  # a forked worker needs its own connections
        import redis

        _redis = (os.getpid(), redis.Redis.from_url(settings.CACHES["default"]["LOCATION"]))
    return bool(_redis[1].set(backend.make_and_validate_key(key), 1, nx=True, ex=LEASE_SECONDS))


_INBOUND_PENDING = "processed_at IS NULL"
_STATUS_COLUMNS = (
    "id",
    "organization_id",
    "account_id",
    "message_ref",
    "message_sid",
    "status",
    "error_code",
    "received_at",
)


def _claim_rows(model, where: str, columns: tuple[str, ...] = ("id",)) -> list[tuple]:
    """Lease up to BATCH pending events of ``model`` to this drain, oldest first: their ``columns``."""
    table = model._meta.db_table
    now = timezone.now()
    lock = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    sql = (
        f"UPDATE {table} SET claimed_until = %s, attempts = attempts + 1 WHERE id IN ("  # noqa: S608
        f"SELECT id FROM {table} WHERE {where} AND attempts < %s "
        f"AND (claimed_until IS NULL OR claimed_until < %s) ORDER BY id LIMIT %s{lock}) "
        f"RETURNING {', '.join(columns)}"
    )
    adapt = connection.ops.adapt_datetimefield_value
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [adapt(now + timedelta(seconds=LEASE_SECONDS)), MAX_ATTEMPTS, adapt(now), BATCH])
        return sorted(cursor.fetchall())


def _claim(model, where: str) -> list[int]:
    """The ids of the events ``_claim_rows`` leased."""
    return [row[0] for row in _claim_rows(model, where)]


def drain(kind: str, seconds: float = DRAIN_SECONDS) -> dict:
    """Process pending events of ``kind`` until there are none or ``seconds`` have passed. Returns counts.

    How drains spread over the workers: while texts arrive, each new event after a drain has started queues
    the next one (the flag protocol in ``schedule_drain``). For a backlog, a drain whose first batch is full
    queues one more drain (through the flag as well, so at most one drain of a kind waits in the queue;
    that drain does the same when it starts), and a drain that runs out of time while its batches are still
    full queues its own successor directly, whoever holds the flag. So a backlog keeps every free worker
    busy until it is gone, and a trickle of texts keeps one."""
    cache.delete(_pending_key(kind))
    batch = _inbound_batch if kind == "inbound" else _status_batch
    deadline = time.monotonic() + seconds
    totals = {"processed": 0, "failed": 0}
    first = True
    while (counts := batch()) is not None:
        totals["processed"] += counts[0]
        totals["failed"] += counts[1]
        full = sum(counts) >= BATCH
        if first and full and not _eager(kind):
            schedule_drain(kind)  # a backlog: one more worker may help
        first = False
        if time.monotonic() > deadline:
            if full:  # work is left: keep this drain's place
                if _eager(kind):
                    schedule_drain(kind)
                else:
                    _drain_task(kind).delay()
            break  # (a partial batch left nothing; later events queue their own drain)
    return totals


def _drain_task(kind: str):
    from messaging.tasks.receiving import drain_inbound_events, drain_status_events

    return drain_inbound_events if kind == "inbound" else drain_status_events


def _eager(kind: str) -> bool:
    return bool(getattr(_drain_task(kind).app.conf, "task_always_eager", False))


def _each(kind: str, items: list, handle) -> tuple[int, int]:
    """``handle`` every item; a failure is logged and left to its lease. (processed, failed)."""
    done = failed = 0
    for item in items:
        try:
            handle(item)
            done += 1
        except Exception:
            failed += 1
            event_id = item[0] if isinstance(item, tuple) else item
            log.exception("%s event %s failed; it is retried when its lease runs out", kind, event_id)
    return done, failed


def _inbound_batch() -> tuple[int, int] | None:
    ids = _claim(InboundEvent, _INBOUND_PENDING)
    return _each("inbound", ids, lambda event_id: _process_inbound(event_id)) if ids else None


def _process_inbound(event_id: int) -> None:
    from messaging.services.receiving import process_inbound_event

    process_inbound_event(event_id)


def _status_batch() -> tuple[int, int] | None:
    """Apply a leased batch of status events (the claim returned their columns: no read per event), then
    delete the applied ones in one statement; a failed one keeps its lease and is retried."""
    rows = _claim_rows(StatusEvent, "1 = 1", _STATUS_COLUMNS)
    if not rows:
        return None
    applied: list[int] = []

    def handle(row: tuple) -> None:
        _apply_status_event(dict(zip(_STATUS_COLUMNS, row, strict=True)))
        applied.append(row[0])

    counts = _each("status", rows, handle)
    StatusEvent.objects.filter(pk__in=applied).delete()
    return counts


def _apply_status_event(event: dict) -> None:
    from messaging.tasks.receiving import record_other_tool_message_task

    received_at = event["received_at"]
    if isinstance(received_at, str):  # SQLite's raw RETURNING: the stored text
        received_at = parse_datetime(received_at)
    if timezone.is_naive(received_at):  # SQLite stores UTC without an offset
        received_at = received_at.replace(tzinfo=UTC)
    changed = apply_status(
        event["message_ref"],
        event["message_sid"],
        event["status"],
        error_code=event["error_code"],
        at=received_at,
        organization_id=event["organization_id"],
        fast_commit=True,
    )
    if (
        not changed
        and event["message_ref"] is None
        and not Message.objects.filter(sid=event["message_sid"]).exists()
    ):
        # A message we never stored: another tool sent it from our number. Fetch it from Twilio.
        account_id, sid = event["account_id"], event["message_sid"]
        transaction.on_commit(lambda: record_other_tool_message_task.delay(account_id, sid))


def pending_counts() -> dict[str, int]:
    """How many events wait for a drain, all organizations (bench/ingest_webhooks.py waits on it)."""
    return {
        "inbound": InboundEvent.objects.filter(processed_at__isnull=True, attempts__lt=MAX_ATTEMPTS).count(),
        "status": StatusEvent.objects.filter(attempts__lt=MAX_ATTEMPTS).count(),
    }


def sweep() -> dict:
    """Periodic: queue a drain for each kind with events no drain holds (a lost task, an expired lease)."""
    now = timezone.now()
    queued = {}
    for kind, rows in (
        ("inbound", InboundEvent.objects.filter(processed_at__isnull=True)),
        ("status", StatusEvent.objects.all()),
    ):
        stale = rows.filter(attempts__lt=MAX_ATTEMPTS).exclude(claimed_until__gte=now).exists()
        if stale:
            cache.delete(_pending_key(kind))
            schedule_drain(kind)
        queued[kind] = stale
    return queued
