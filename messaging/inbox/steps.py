"""The inbox step of every stored message, made durable.

After a message is stored, the inbox does its bookkeeping (``messaging.inbox.actions``: for an inbound text
``handle_inbound``, the session, unread counts, notifications and live events; for an outbound message
``handle_outbound``, the session, the sender's read state and live events). That step must happen once for
every message, even when Redis or PostgreSQL blinks in between, so it is an outbox row, ``InboxStep``:

- ``expect_step`` writes the row in the transaction that stores the message: it is the durable form of the
  inbox's receivers of ``inbound_message_stored`` / ``outbound_message_created``
  (``messaging.signals.make_durable``), so every path that announces a stored message gets it;
- right after that commit the step is tried at once (the signal's receiver calls ``run_step``), or, for a
  message whose sender already has the answer (an API send), by a drain task in a worker that files the
  outbound messages stored meanwhile in one batch (``lease_fresh_outbound``, then
  ``messaging.inbox.outbound_batch``); the bookkeeping marks the row done in its own transaction
  (``claim``), so a step that runs twice (a retry racing a slow first try, a redelivered task) counts and
  notifies once;
- a try that raises is recorded on the row (``attempts``, ``error``) and tried again after a backoff (5 s,
  doubling, at most 10 min) by ``retry_due``, which the periodic job ``messaging.retry_inbox_steps`` and the
  end of every inbound drain call. A row whose try never reported back (the worker died, the database was
  gone) is tried again when its lease (``run_after``) runs out;
- after ``MAX_ATTEMPTS`` failed tries the step is ``failed``: counted on ``/healthz`` and listed in the admin
  ("Inbox steps"), whose "Retry now" action tries it again.

Live events are published after the bookkeeping commits, best effort (``quicksend.realtime``): a failed
publish never undoes or repeats the bookkeeping.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from messaging.models import InboxStep, Message
from quicksend import realtime

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
# A try in progress holds its step this long; after that the step is due again (its worker died).
LEASE_SECONDS = 60
RETRY_BATCH = 100


def backoff_seconds(attempts: int) -> int:
    """How long to wait after the ``attempts``-th failed try: 5 s, 10 s, 20 s … at most 10 minutes."""
    return min(600, 5 * 2 ** max(0, attempts - 1))


def expect_step(
    *,
    message_id: int,
    organization_id: int,
    outbound: bool = False,
    created_conversation: bool = False,
    blocked: bool = False,
) -> None:
    """In the transaction that stores a message: the row that makes its inbox step durable. The try right
    after commit holds it for ``LEASE_SECONDS``."""
    InboxStep.objects.create(
        organization_id=organization_id,
        message_id=message_id,
        outbound=outbound,
        created_conversation=created_conversation,
        blocked=blocked,
        run_after=timezone.now() + timedelta(seconds=LEASE_SECONDS),
    )


def expect_inbound(
    *, message_id, organization_id, created_conversation=False, blocked=False, **kwargs
) -> None:
    """``expect_step`` as the durable form of ``inbound_message_stored``."""
    expect_step(
        message_id=message_id,
        organization_id=organization_id,
        created_conversation=bool(created_conversation),
        blocked=bool(blocked),
    )


def expect_outbound(*, message_id, organization_id, **kwargs) -> None:
    """``expect_step`` as the durable form of ``outbound_message_created``."""
    expect_step(message_id=message_id, organization_id=organization_id, outbound=True)


def claim(
    message_id: int, *, created_conversation: bool = False, blocked: bool = False
) -> tuple[bool, bool] | None:
    """Inside the bookkeeping's transaction: mark the message's step done, and return its
    ``(created_conversation, blocked)``; None when it is already done (nothing left to do).

    One statement, which also creates the row for a message stored without one. It locks the row until the
    transaction ends, so a concurrent try of the same step waits, then finds it done."""
    table = InboxStep._meta.db_table
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    sql = (
        f"INSERT INTO {table} (organization_id, message_id, outbound, created_conversation, blocked, "  # noqa: S608
        "created_at, attempts, done_at, error, last_tried_at) "
        f"SELECT organization_id, id, direction = 'outbound', %s, %s, %s, 0, %s, '', %s "
        f"FROM {Message._meta.db_table} WHERE id = %s "
        f"ON CONFLICT (message_id) DO UPDATE SET done_at = excluded.done_at, failed_at = NULL, "
        f"last_tried_at = excluded.last_tried_at WHERE {table}.done_at IS NULL "
        "RETURNING created_conversation, blocked"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [created_conversation, blocked, now, now, now, message_id])
        row = cursor.fetchone()
    return (bool(row[0]), bool(row[1])) if row else None


# The bookkeeping itself (``messaging.inbox.actions``), set when the app loads (``receivers.connect``): the
# actions call ``claim`` here, so this module does not import them.
_handlers: dict[str, Callable[..., object]] = {}


def set_handlers(*, inbound: Callable[..., object], outbound: Callable[..., object]) -> None:
    _handlers["inbound"], _handlers["outbound"] = inbound, outbound


def run_step(
    message_id: int, *, outbound: bool = False, created_conversation: bool = False, blocked: bool = False
) -> bool | None:
    """Try the inbox step of one message now. True: done by this try; False: it was done already; None: it
    failed (recorded on its row, retried later). Never raises: the caller has stored the message, and the
    step's failure is the step's to record."""
    try:
        # The step's live events go out together once it commits (one trip to the channel layer).
        with realtime.collect():
            if outbound:
                result = _handlers["outbound"](message_id)
            else:
                result = _handlers["inbound"](
                    message_id, created_conversation=created_conversation, blocked=blocked
                )
    except Exception as exc:
        log.exception("the inbox step of message %s failed; it will be retried", message_id)
        if isinstance(exc, OperationalError | InterfaceError) and not connection.in_atomic_block:
            connection.close()  # broken (the server closed it): the failure is recorded on a fresh one
        _record_failure(message_id, exc)
        return None
    return result is not None


def _record_failure(message_id: int, exc: Exception) -> None:
    """Count the failed try on the step's row and set when it is tried again (or mark it failed). When even
    this cannot be written (the database is gone), the row keeps its lease and is retried when it ends."""
    now = timezone.now()
    error = f"{exc.__class__.__name__}: {exc}"[:2000]
    try:
        with transaction.atomic():
            step = InboxStep.objects.select_for_update().filter(message_id=message_id).first()
            if step is None:
                message = Message.objects.filter(pk=message_id).only("organization_id", "direction").first()
                if message is None:
                    return
                step = InboxStep(
                    organization_id=message.organization_id,
                    message_id=message_id,
                    outbound=message.direction == Message.Direction.OUTBOUND,
                )
            if step.done_at is not None:
                return
            step.attempts += 1
            step.error = error
            step.last_tried_at = now
            if step.attempts >= MAX_ATTEMPTS:
                step.failed_at = now
                log.error(
                    "the inbox step of message %s failed %d times: %s", message_id, step.attempts, error
                )
            step.run_after = now + timedelta(seconds=backoff_seconds(step.attempts))
            step.save()
    except Exception:
        log.exception("could not record the failed inbox step of message %s", message_id)


def retry_due(limit: int = RETRY_BATCH) -> dict:
    """Try the steps that are due (a failed try's backoff is over, or a try never reported back), oldest
    first, at most ``limit``; each is leased first, so two sweeps never try one step at once."""
    table = InboxStep._meta.db_table
    now = timezone.now()
    adapt = connection.ops.adapt_datetimefield_value
    lock = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    sql = (
        f"UPDATE {table} SET run_after = %s WHERE id IN ("  # noqa: S608
        f"SELECT id FROM {table} WHERE done_at IS NULL AND failed_at IS NULL "
        f"AND (run_after IS NULL OR run_after <= %s) ORDER BY run_after LIMIT %s{lock}) "
        "RETURNING message_id, outbound, created_conversation, blocked"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [adapt(now + timedelta(seconds=LEASE_SECONDS)), adapt(now), limit])
        due = sorted(cursor.fetchall())
    stats = {"tried": len(due), "done": 0, "failed": 0}
    for message_id, outbound, created_conversation, blocked in due:
        outcome = run_step(
            message_id,
            outbound=bool(outbound),
            created_conversation=bool(created_conversation),
            blocked=bool(blocked),
        )
        stats["failed" if outcome is None else "done"] += 1
    return stats


def lease_fresh_outbound(limit: int) -> list[int]:
    """For a drain that files outbound messages in batches (``messaging.inbox.outbound_batch.file_waiting``):
    lease up to ``limit`` outbound steps that nobody has tried yet, oldest first, and return their message
    ids. A leased step is not offered to another drain; should its drain die, ``retry_due`` tries it once
    the lease (``LEASE_SECONDS``) runs out. Its bookkeeping still marks it done only once (``done_at``)."""
    table = InboxStep._meta.db_table
    now = timezone.now()
    adapt = connection.ops.adapt_datetimefield_value
    lock = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    sql = (
        f"UPDATE {table} SET run_after = %s, last_tried_at = %s WHERE id IN ("  # noqa: S608
        f"SELECT id FROM {table} WHERE done_at IS NULL AND failed_at IS NULL AND outbound = %s "
        f"AND last_tried_at IS NULL ORDER BY run_after LIMIT %s{lock}) RETURNING message_id"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [adapt(now + timedelta(seconds=LEASE_SECONDS)), adapt(now), True, limit])
        return sorted(row[0] for row in cursor.fetchall())


def do_retry_steps(step_ids) -> int:
    """An admin's "Retry now": the given steps that are not done are tried again at once, with a fresh
    count of tries. Returns how many were done by this retry."""
    waiting = list(
        InboxStep.objects.filter(pk__in=list(step_ids), done_at__isnull=True).values_list(
            "message_id", "outbound", "created_conversation", "blocked"
        )
    )
    done = 0
    for message_id, outbound, created_conversation, blocked in waiting:
        InboxStep.objects.filter(message_id=message_id, done_at__isnull=True).update(
            attempts=0, failed_at=None, run_after=timezone.now() + timedelta(seconds=LEASE_SECONDS)
        )
        outcome = run_step(
            message_id, outbound=outbound, created_conversation=created_conversation, blocked=blocked
        )
        done += bool(outcome)
    return done


def failure_counts() -> dict[str, int]:
    """What ``/healthz`` shows of the inbox steps: failed for good (an admin must look) and waiting for a
    retry after a failed try."""
    return {
        "inbox_steps_failed": InboxStep.objects.filter(failed_at__isnull=False, done_at__isnull=True).count(),
        "inbox_steps_retrying": InboxStep.objects.filter(
            done_at__isnull=True, failed_at__isnull=True, attempts__gt=0
        ).count(),
    }
