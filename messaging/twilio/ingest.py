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
import threading
import time
from datetime import UTC, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from messaging.models import InboundEvent, Message, StatusEvent
from messaging.segments import MAX_BODY_CHARACTERS
from messaging.services.status import apply_status, twilio_status_word
from messaging.twilio.signatures import Form, VerifiedAccount, forget_cached_tokens, public_url_for, verify
from quicksend import queue

log = logging.getLogger(__name__)

# The paths Twilio calls, and which kind of event each stores.
WEBHOOK_PATHS = {"/api/incoming-sms": "inbound", "/api/status-callback": "status"}
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response />'
MESSAGE_SID_RE = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")

# How long a drain may hold an event before another drain may take it over (a worker that died).
LEASE_SECONDS = 120
BATCH = 20
# Status callbacks are applied, and plain inbound texts stored and filed, a batch at a time in one
# transaction (a constant number of statements per batch). The sizes keep one batch's live events to one
# socket under the channel layer's 100 frames per channel (more are dropped) and its frames prompt: an
# inbound text makes up to 3 frames for a member (message, conversation, notification), a status up to 2.
STATUS_BATCH = 50
INBOUND_BATCH = 25
# A drain task stops after this long and queues its successor, so one burst cannot hog a worker forever.
DRAIN_SECONDS = 20.0
# Status callbacks arrive two or three per text: under a steady stream a worker process starts a status
# drain at most this often (``queue.pace``), so each applies a batch instead of one or two callbacks. A
# lone callback is applied at once; inbound texts are never held.
STATUS_PACE_SECONDS = 0.1
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
UNAVAILABLE = WebhookResponse(503, b"Service unavailable", "text/plain")

# Waking a drain must never hold up a webhook's answer: the Redis calls it makes give up after this long (the
# periodic sweep queues a drain for whatever a failed wake-up left waiting).
WAKE_TIMEOUT_SECONDS = 0.25


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
        return inbound_event(account, form.dict(), raw=form)
    status = twilio_status_word(_storable(form.get("MessageStatus") or form.get("SmsStatus", "")))
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


def inbound_event(account: VerifiedAccount, form: dict[str, str], raw=None) -> Event:
    """The event of a verified inbound webhook (``form``: its fields, one value each; ``raw``: the posted
    form with every value, a ``Form`` or ``QueryDict``). The body is capped by ``cap_inbound_body``, the one
    check both webhook paths go through.

    PostgreSQL cannot store a NUL character in text or JSON. A field carrying one is stored without it, and
    the whole form as posted is kept URL-encoded in ``raw_form`` (where ``%00`` is harmless), so what Twilio
    sent is never lost and one such text never fails the other webhooks written with it."""
    form = cap_inbound_body(form)
    payload = json.dumps(form)
    raw_form = ""
    if "\\u0000" in payload:  # json.dumps writes NUL as an escape: one scan of the dumped form
        raw_form = _urlencoded(raw if raw is not None else form)
        form = {_storable(name): _storable(value) for name, value in form.items()}
        payload = json.dumps(form)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    row = (account.organization_id, account.account_id, form["MessageSid"], payload, raw_form, now)
    return Event("inbound", row)


def _storable(text: str) -> str:
    """``text`` without NUL characters, which PostgreSQL refuses in text and JSON columns."""
    return text.replace("\x00", "")


def _urlencoded(form) -> str:
    if hasattr(form, "getlist"):
        return urlencode([(name, value) for name in form for value in form.getlist(name)])
    return urlencode(form)


def handle_webhook(kind: str, path: str, query_string: str, form, signature: str) -> WebhookResponse:
    """A Twilio webhook's whole request path: verify, check, store, acknowledge (``check_webhook`` then
    ``store_events``). Anything unverifiable or malformed: 403 and nothing stored."""
    try:
        checked = check_webhook(kind, path, query_string, form, signature)
        if isinstance(checked, WebhookResponse):
            return checked
        return store_events([checked])[0]
    except (OperationalError, InterfaceError):
        log.exception("webhook %s not stored: the database is unreachable", path)
        connection.close()
        return UNAVAILABLE


_INBOUND_COLUMNS = "organization_id, account_id, message_sid, payload, raw_form, received_at, attempts, error"
_STATUS_INSERT_COLUMNS = (
    "organization_id, account_id, message_ref, message_sid, status, error_code, received_at, attempts"
)


def _insert_sql(kind: str, count: int) -> str:
    if kind == "inbound":
        cast = "::jsonb" if connection.vendor == "postgresql" else ""
        values = ", ".join([f"(%s, %s, %s, %s{cast}, %s, %s, 0, '')"] * count)
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
    are acknowledged). After commit, a drain is woken per kind that stored something (best effort: the
    answer never waits on it).

    One webhook's failure never decides another's answer: when the batch fails for anything but the
    database being unreachable, each event is stored on its own and gets its own answer (an account removed
    since its token was cached: 403; any other refusal of that row: 503 for it alone). A database that
    cannot be reached raises (``OperationalError``/``InterfaceError``): no row would fare better."""
    if not events:
        return []
    try:
        _store(events)
        return [OK] * len(events)
    except (OperationalError, InterfaceError):
        raise
    except DatabaseError:
        if len(events) == 1:
            return [_store_alone(events[0])]
        log.warning("a batch of %d webhooks failed; storing them one by one", len(events), exc_info=True)
    forget_cached_tokens()
    return [_store_alone(event) for event in events]


def _store_alone(event: Event) -> WebhookResponse:
    try:
        _store([event])
    except IntegrityError:
        forget_cached_tokens()
        return FORBIDDEN  # its account was removed since its token was cached
    except DatabaseError:
        log.exception("%s webhook %s not stored", event.kind, event.row[3 if event.kind == "status" else 2])
        return UNAVAILABLE
    return OK


def _store(events: list[Event]) -> None:
    """Insert ``events`` in one transaction (nothing stored when it raises)."""
    with transaction.atomic():
        _insert_batch(events)


def _insert_batch(events: list[Event]) -> None:
    for kind in DRAIN_KINDS:
        rows = [event.row for event in events if event.kind == kind]
        if rows and _execute_returning(_insert_sql(kind, len(rows)), [v for row in rows for v in row]):
            transaction.on_commit(lambda kind=kind: wake_drain(kind))


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
    Raises when Redis or the broker fails (``wake_drain`` is the best-effort form).
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
            _publish(task)
        except Exception:
            _gate_delete(key)  # nothing was queued: the next event must try again
            raise


def wake_drain(kind: str) -> bool:
    """``schedule_drain`` after a webhook was stored, best effort: the webhook is answered 200 whatever
    happens here. Redis and the broker are given ``WAKE_TIMEOUT_SECONDS``; a failure is logged and left to
    the periodic sweep (``sweep``, every minute), which queues a drain for any event no drain holds."""
    try:
        schedule_drain(kind)
    except Exception as exc:
        log.warning(
            "could not wake the %s drain (%s); the periodic sweep will",
            kind,
            exc.__class__.__name__,
            exc_info=_eager(kind),  # embedded mode ran the drain itself: show why it failed
        )
        return False
    return True


_redis: tuple[int, object] | None = None
_wake_connection: tuple[int, object] | None = None
_wake_lock = threading.Lock()


def _gate_client():
    """This process's Redis client for the drain flag, with short timeouts (a paused Redis must not hold up
    a webhook). The Django cache builds a client object per call, which was a sixth of the webhook writer's
    time."""
    global _redis
    if _redis is None or _redis[0] != os.getpid():  # a forked worker needs its own connections
        import redis

        client = redis.Redis.from_url(
            settings.CACHES["default"]["LOCATION"],
            socket_timeout=WAKE_TIMEOUT_SECONDS,
            socket_connect_timeout=WAKE_TIMEOUT_SECONDS,
        )
        _redis = (os.getpid(), client)
    return _redis[1]


def _gate_add(key: str) -> bool:
    """``cache.add(key, 1, LEASE_SECONDS)``: with Redis, one ``SET NX EX`` on the short-timeout client."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return backend.add(key, 1, timeout=LEASE_SECONDS)
    return bool(_gate_client().set(backend.make_and_validate_key(key), 1, nx=True, ex=LEASE_SECONDS))


def _gate_delete(key: str) -> None:
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        backend.delete(key)
        return
    try:
        _gate_client().delete(backend.make_and_validate_key(key))
    except Exception:  # the flag expires by itself (LEASE_SECONDS)
        log.warning("could not clear the drain flag %s", key)


def _publish(task) -> None:
    """Queue ``task`` through a broker connection of this process with short timeouts and no retries, so a
    paused or refusing Redis fails fast instead of blocking the caller (Celery's default connection retries
    and waits)."""
    global _wake_connection
    with _wake_lock:
        _publish_locked(task)


def _publish_locked(task) -> None:
    global _wake_connection
    if _wake_connection is None or _wake_connection[0] != os.getpid():
        options = {
            **(task.app.conf.broker_transport_options or {}),
            "socket_timeout": WAKE_TIMEOUT_SECONDS,
            "socket_connect_timeout": WAKE_TIMEOUT_SECONDS,
            "max_retries": 0,
        }
        _wake_connection = (os.getpid(), task.app.connection_for_write(transport_options=options))
    conn = _wake_connection[1]
    try:
        task.apply_async(connection=conn, retry=False)
    except Exception:
        _wake_connection = None  # a fresh connection next time
        conn.release()
        raise


_INBOUND_PENDING = "processed_at IS NULL"
_INBOUND_COLUMNS_CLAIMED = ("id", "organization_id", "account_id", "message_sid", "payload")
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


def _claim_rows(model, where: str, columns: tuple[str, ...] = ("id",), limit: int = BATCH) -> list[tuple]:
    """Lease up to ``limit`` pending events of ``model`` to this drain, oldest first: their ``columns``."""
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
        cursor.execute(sql, [adapt(now + timedelta(seconds=LEASE_SECONDS)), MAX_ATTEMPTS, adapt(now), limit])
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
    if kind == "status" and not _eager(kind):
        queue.pace("status-drain", STATUS_PACE_SECONDS)
    cache.delete(_pending_key(kind))
    batch = _inbound_batch if kind == "inbound" else _status_batch
    deadline = time.monotonic() + seconds
    totals = {"processed": 0, "failed": 0}
    first = True
    while (counts := batch()) is not None:
        totals["processed"] += counts[0]
        totals["failed"] += counts[1]
        full = sum(counts) >= _batch_size(kind)
        if first and full and not _eager(kind):
            wake_drain(kind)  # a backlog: one more worker may help
        first = False
        if time.monotonic() > deadline:
            if full:  # work is left: keep this drain's place
                if _eager(kind):
                    schedule_drain(kind)
                else:
                    _drain_task(kind).delay()
            break  # (a partial batch left nothing; later events queue their own drain)
    if kind == "inbound" and not _eager(kind):
        # The inbox steps whose first try failed (Redis or the database blinked) are due again: a drain
        # that runs anyway does them at once instead of leaving them to the next periodic run.
        from messaging.inbox import steps

        steps.retry_due()
    return totals


def _batch_size(kind: str) -> int:
    if connection.vendor != "postgresql":
        return BATCH
    return STATUS_BATCH if kind == "status" else INBOUND_BATCH


def _drain_task(kind: str):
    # By name: the drain tasks call back into this module.
    return queue.task(f"messaging.tasks.receiving.drain_{kind}_events")


def _eager(kind: str) -> bool:
    return bool(getattr(_drain_task(kind).app.conf, "task_always_eager", False))


def _each(kind: str, items: list, handle) -> tuple[int, int]:
    """``handle`` every item; a failure is logged, recorded on an inbound event (``error``: what an admin
    reads if it never succeeds) and tried again after a backoff (``retry_delay``). (processed, failed)."""
    done = failed = 0
    for item in items:
        try:
            handle(item)
            done += 1
        except Exception as exc:
            failed += 1
            event_id = item[0] if isinstance(item, tuple) else item
            if _connection_lost(exc):
                # The database connection broke (a restart, a failover, pg_terminate_backend): the next event
                # gets a fresh one, and this one is given back at once rather than after its lease.
                log.warning("%s event %s: the database connection failed; trying it again", kind, event_id)
                _release(kind, event_id)
                continue
            log.exception("%s event %s failed; it is tried again after a backoff", kind, event_id)
            _back_off(kind, event_id, exc)
    return done, failed


# A failed event is tried again after RETRY_BASE_SECONDS × 2^(tries − 1), at most its lease: seconds for a
# blip (a deadlock, a lock timeout), minutes for a lasting fault, until MAX_ATTEMPTS (then an admin sees it).
RETRY_BASE_SECONDS = 5


def retry_delay(attempts: int) -> float:
    return float(min(LEASE_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1)))


def _back_off(kind: str, event_id: int, exc: Exception) -> None:
    """Shorten a failed event's lease to its backoff (and record why, on an inbound event); the periodic
    sweep, or the next drain, takes it again then."""
    model = InboundEvent if kind == "inbound" else StatusEvent
    try:
        attempts = model.objects.filter(pk=event_id).values_list("attempts", flat=True).first() or 1
        changes = {"claimed_until": timezone.now() + timedelta(seconds=retry_delay(attempts))}
        if kind == "inbound":
            changes["error"] = f"{exc.__class__.__name__}: {exc}"[:300]
        model.objects.filter(pk=event_id).update(**changes)
    except Exception:  # the database itself failed: the lease still brings the event back
        log.exception("could not schedule the retry of %s event %s", kind, event_id)


def _connection_lost(exc: Exception) -> bool:
    if not isinstance(exc, OperationalError | InterfaceError) or connection.in_atomic_block:
        return False
    connection.close()
    return True


def _release(kind: str, event_id: int) -> None:
    model = InboundEvent if kind == "inbound" else StatusEvent
    try:
        model.objects.filter(pk=event_id).update(claimed_until=None)
    except DatabaseError:  # the database is really gone: the lease brings the event back
        connection.close()


def _inbound_batch() -> tuple[int, int] | None:
    """Process a leased batch of inbound events. On PostgreSQL the plain texts of the batch are stored and
    filed in one transaction (``messaging.services.inbound_batch``); elsewhere, and for texts that need
    more (media, keywords, an unknown number), one event at a time (``process_inbound_event``)."""
    if connection.vendor != "postgresql":
        ids = _claim(InboundEvent, _INBOUND_PENDING)
        return _each("inbound", ids, _process_inbound) if ids else None
    from messaging.services.inbound_batch import process_inbound_events

    rows = _claim_rows(InboundEvent, _INBOUND_PENDING, _INBOUND_COLUMNS_CLAIMED, INBOUND_BATCH)
    if not rows:
        return None
    return process_inbound_events(rows, _process_inbound, lambda ids, handle: _each("inbound", ids, handle))


def _process_inbound(event_id: int) -> None:
    from messaging.services.receiving import process_inbound_event

    process_inbound_event(event_id)


def _status_batch() -> tuple[int, int] | None:
    """Apply a leased batch of status events and delete them, in ONE transaction on PostgreSQL
    (``status.apply_statuses``: a constant number of statements for the batch; its live events go out
    together after the commit). Applying and deleting commit together, so a worker killed mid-batch leaves
    every event of it waiting (its lease runs out) and none applied twice; a status applied twice would
    change nothing anyway (forward only). When the batch fails as a whole, each event is applied on its own
    (``apply_status``) so one bad row cannot hold up the others."""
    rows = _claim_rows(StatusEvent, "1 = 1", _STATUS_COLUMNS, STATUS_BATCH)
    if not rows:
        return None
    if connection.vendor == "postgresql":
        try:
            _apply_status_batch([dict(zip(_STATUS_COLUMNS, row, strict=True)) for row in rows])
            return len(rows), 0
        except Exception as exc:
            if _connection_lost(exc):
                # A lost connection, or the database gave up on the batch (a deadlock): tried again at once.
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                log.warning("a batch of %d status events: %s; trying them again", len(rows), reason)
                for row in rows:
                    _release("status", row[0])
                return 0, len(rows)
            log.warning(
                "a batch of %d status events failed; applying them one by one", len(rows), exc_info=True
            )
    applied: list[int] = []

    def handle(row: tuple) -> None:
        _apply_status_event(dict(zip(_STATUS_COLUMNS, row, strict=True)))
        applied.append(row[0])

    counts = _each("status", rows, handle)
    StatusEvent.objects.filter(pk__in=applied).delete()
    return counts


def _apply_status_batch(events: list[dict]) -> None:
    from messaging.services.status import StatusUpdate, apply_statuses
    from quicksend import realtime

    updates = [
        StatusUpdate(
            e["message_ref"],
            e["message_sid"],
            e["status"],
            e["error_code"],
            e["received_at"],
            e["organization_id"],
        )
        for e in events
    ]
    accounts = {e["message_sid"]: e["account_id"] for e in events}
    with realtime.collect(), transaction.atomic():
        with connection.cursor() as cursor:
            # A status applied and its event deleted commit together: a commit lost in a server crash loses
            # both, and the event is applied again (the webhook was acknowledged once it was stored).
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        unknown = apply_statuses(updates)
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {StatusEvent._meta.db_table} WHERE id = ANY(%s)",  # noqa: S608
                [[e["id"] for e in events]],
            )
        for sid in dict.fromkeys(unknown):
            account_id = accounts[sid]
            # A message we never stored: another tool sent it from our number. Fetch it from Twilio.
            transaction.on_commit(
                lambda a=account_id, s=sid: queue.enqueue(
                    "messaging.tasks.receiving.record_other_tool_message_task", a, s
                )
            )


def _apply_status_event(event: dict) -> None:
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
        transaction.on_commit(
            lambda: queue.enqueue("messaging.tasks.receiving.record_other_tool_message_task", account_id, sid)
        )


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
            _gate_delete(_pending_key(kind))
            schedule_drain(kind)
        queued[kind] = stale
    return queued
