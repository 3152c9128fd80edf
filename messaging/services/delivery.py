"""Delivery: hand one stored outbound message to Twilio, safely (docs/messaging.md "Sending").

``deliver(message_id)`` is the whole algorithm; ``messaging.tasks.sending.send_message_task`` only calls it
and schedules the retry it asks for. The order of steps is what makes it safe:

1. Re-read the message: only a ``pending`` message without a SID is sent (a duplicate or late task does
   nothing).
2. If ``handed_over_at`` is already set, an earlier run may have died after Twilio accepted the message but
   before the SID was stored: reconcile with Twilio first (list by To/From/DateSent, match body and time)
   and adopt the SID if it is there. Only a message Twilio does not have is sent again.
3. Consent again, at send time (a message queued before a STOP is not sent: it fails with the reason).
4. The sender number's allowance per second (``messaging.services.throttle``); when spent, retry later.
5. Claim the message by setting ``handed_over_at`` (a conditional UPDATE, committed) BEFORE calling Twilio.
6. Create the message at Twilio with ``StatusCallback = status_callback_url() + "?m=<our id>"``; store the
   SID and status through ``apply_status``.
7. Errors: retryable ones (429/20429, 5xx, network, 21611) retry with exponential backoff and jitter up to
   ``SEND_MAX_ATTEMPTS`` tries, then fail; permanent ones fail at once with the plain reason; 21610 also
   records an opt-out; 20003 marks the account invalid and tells its admins.

When the message must wait (throttled, a retryable error, a hand-over still in flight) ``deliver`` raises
``RetryLater(countdown)``: the caller decides how to wait (a Celery retry, or in place in embedded mode).
"""

from __future__ import annotations

import logging
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from messaging.models import Message, MessageStatus, TwilioAccount
from messaging.services import throttle
from messaging.services.consent import consent_flags, refusal_from_flags
from messaging.services.status import StatusUpdate, apply_status, apply_statuses, normalize_status
from messaging.twilio.errors import TwilioError, twilio_call
from messaging.twilio.public_urls import status_callback_url

log = logging.getLogger(__name__)

SEND_MAX_ATTEMPTS = 6
# Twilio's clock against ours, and the 1-second resolution of its dates: how far before ``handed_over_at`` a
# message found at Twilio may have been created and still be ours.
RECONCILE_MARGIN = timedelta(minutes=2)


def _in_flight_seconds() -> float:
    # Longer than a Twilio request can take (TWILIO_HTTP_TIMEOUT for connect and for read).
    return float(getattr(settings, "QUICKSEND_SEND_IN_FLIGHT_SECONDS", 30.0))


def _retry_base_seconds() -> float:
    return float(getattr(settings, "QUICKSEND_SEND_RETRY_BASE_SECONDS", 2.0))


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with full jitter: attempt 1 → up to 2 s, 2 → up to 4 s, … (capped at 10 min)."""
    ceiling = min(600.0, _retry_base_seconds() * (2 ** max(0, attempt - 1)))
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not security


def _accepted_by_twilio(message_id: int, sid: str) -> None:
    """Runs right after Twilio accepted a message and before its SID is stored: nothing in production.
    The crash test replaces it to kill the process at exactly this point."""


def fail_message(message_id: int, reason: str, *, code: int | None = None) -> bool:
    """Mark a message that did not (or could not) reach Twilio as failed with ``reason`` in plain words."""
    with transaction.atomic():
        updated = Message.objects.filter(pk=message_id, status_rank__lt=60).update(
            error_message=reason[:300], error_code=code
        )
        if not updated:
            return False
        return apply_status(message_id, None, MessageStatus.FAILED)


def _status_callback(message_id: int) -> str:
    # Our id in the callback URL: a callback that beats the send response still finds its row.
    return f"{status_callback_url()}?m={message_id}"


def _media_urls(message: Message) -> list[str]:
    from messaging.media.signed_urls import signed_media_url

    return [signed_media_url(item) for item in message.media.all()]


def _reconcile(message: Message, client) -> str | None:
    """The SID of this message at Twilio if an earlier run handed it over, else None.

    Lists the account's messages To/From with ``DateSent`` from the hand-over (minus a margin; Twilio's
    date filters are coarse, so the window overlaps and we match ourselves), plus the newest page without a
    date filter (a message still queued has no date_sent yet). A candidate matches on body and on
    ``date_created`` ≥ handed_over_at − margin, and must not already belong to another of our messages.
    """
    since = message.handed_over_at - RECONCILE_MARGIN
    api = client.api.v2010.accounts(message.account.account_sid).messages
    with twilio_call():
        candidates = list(
            api.list(to=message.to_number, from_=message.from_number, date_sent_after=since, limit=200)
        )
        candidates += list(api.list(to=message.to_number, from_=message.from_number, limit=50))
    seen = set()
    for item in candidates:
        if item.sid in seen:
            continue
        seen.add(item.sid)
        created = item.date_created
        if (item.body or "") != message.body or created is None or created < since:
            continue
        if Message.objects.filter(sid=item.sid).exclude(pk=message.pk).exists():
            continue
        return item.sid
    return None


def _adopt(message: Message, sid: str, status: str) -> None:
    # apply_status stores the SID with the status (or alone when the status did not move forward), never
    # the SID another row already holds.
    apply_status(message.pk, sid, status or MessageStatus.QUEUED, row=message)


def notify_account_invalid(account: TwilioAccount, error: TwilioError) -> None:
    """Twilio refused the account's credentials (20003): mark it invalid (audited; its admins are told,
    once: a retried task, or the next message, finds the account already invalid)."""
    from messaging.twilio.accounts import do_mark_twilio_account_invalid

    with transaction.atomic():
        do_mark_twilio_account_invalid(account, error)


class RetryLater(Exception):
    """The message must wait ``countdown`` seconds before the next try (nothing was sent)."""

    def __init__(self, countdown: float) -> None:
        super().__init__(f"retry in {countdown:.2f} s")
        self.countdown = countdown


def _handle_error(message: Message, error: TwilioError) -> str:
    if error.retryable:
        if message.send_attempts < SEND_MAX_ATTEMPTS:
            if error.code in (20429, 21611) or error.status == 429:
                # Twilio did not process the request: nothing to reconcile before trying again.
                Message.objects.filter(pk=message.pk).update(handed_over_at=None)
            countdown = backoff_seconds(message.send_attempts)
            log.info("message %s: %r, retry in %.1f s", message.pk, error, countdown)
            raise RetryLater(countdown)
        fail_message(
            message.pk,
            f"Twilio could not take the message after {message.send_attempts} tries: {error.message}",
            code=error.code,
        )
        return "failed"
    fail_message(message.pk, error.message, code=error.code)
    if error.code == 21610:
        from messaging.services.consent import do_change_consent

        do_change_consent(
            message.organization,
            message.to_number,
            "opt_out",
            "twilio_21610",
            message=message,
            note="Twilio refused a message with error 21610 (the recipient had replied STOP).",
        )
    elif error.code == 20003 and message.account is not None:
        notify_account_invalid(message.account, error)
    return "failed"


def deliver(message_id: int) -> str:
    """Hand message ``message_id`` to Twilio if it still needs it (see the module docstring). Returns what
    happened in a word ("sent", "reconciled", "failed", "refused", "done", "missing", "claimed-elsewhere");
    raises ``RetryLater`` when it must wait."""
    message = _to_deliver().filter(pk=message_id).first()
    if message is None:
        return "missing"
    if message.status_rank > 0 or message.sid:
        return "done"  # already handed over (or failed, or canceled): never twice
    account = message.account
    if account is None:
        fail_message(message.pk, "The sender number's Twilio account was removed.")
        return "failed"

    from messaging.twilio.client import client_for_account

    _wait_for_hand_over_in_flight(message)
    try:
        client = client_for_account(account)
        if message.handed_over_at is not None:
            found = _reconcile(message, client)
            if found:
                _adopt(message, found, MessageStatus.QUEUED)
                return "reconciled"
    except TwilioError as error:
        return _handle_error(message, error)

    refused = _refuse_at_send_time(message, account)
    if refused:
        return refused
    number = message.conversation.phone_number
    wait = throttle.take(number.pk, number.number_type, message.num_segments)
    if wait > 0:
        raise RetryLater(wait + random.uniform(0, 0.05))  # noqa: S311 - jitter
    if not _claim(message):
        return "claimed-elsewhere"
    return _hand_over(message, client)


def _to_deliver():
    """The outbound messages to hand over, each with what its delivery reads: the account, the sender number
    (through the conversation) and the recipient's consent flags at this moment (``consent_flags``), in one
    query."""
    return (
        Message.objects.select_related("account", "conversation__phone_number")
        .filter(direction=Message.Direction.OUTBOUND)
        .annotate(consent_flags=consent_flags("organization_id", "to_number"))
    )


def _wait_for_hand_over_in_flight(message: Message) -> None:
    if message.handed_over_at is None:
        return
    # A hand-over this recent may still be in flight in another worker (a task delivered twice): give it
    # time to finish rather than reconcile against a Twilio that has not answered it yet.
    age = (timezone.now() - message.handed_over_at).total_seconds()
    if age < _in_flight_seconds():
        raise RetryLater(_in_flight_seconds() - age + random.uniform(0, 1))  # noqa: S311


def _refuse_at_send_time(message: Message, account: TwilioAccount) -> str:
    """Consent and the account, checked again in the worker: "" when the message may go."""
    # The number's consent rode along with the message (``_to_deliver``): read at send time, in the same
    # query, never cached.
    refusal = refusal_from_flags(
        message.consent_flags, keyword_reply=message.source == Message.Source.AUTO_REPLY
    )
    if refusal:
        fail_message(message.pk, refusal)
        return "refused"
    if account.status != TwilioAccount.Status.VALID:
        fail_message(
            message.pk,
            "The Twilio account's credentials are not valid; an admin must check them in Settings.",
        )
        return "failed"
    return ""


def _claim(message: Message) -> bool:
    """Commit ``handed_over_at`` before Twilio is called, so a retry after a crash knows to reconcile."""
    now = timezone.now()
    claimed = (
        Message.objects.filter(pk=message.pk, status_rank=0, sid__isnull=True)
        .filter(handed_over_at=message.handed_over_at)
        .update(handed_over_at=now, send_attempts=message.send_attempts + 1)
    )
    if not claimed:
        return False
    message.handed_over_at = now
    message.send_attempts += 1
    return True


def _create_params(message: Message) -> dict:
    params = {
        "to": message.to_number,
        "from_": message.from_number,
        "status_callback": _status_callback(message.pk),
    }
    if message.body:
        params["body"] = message.body
    if message.num_media:
        params["media_url"] = _media_urls(message)
    if message.validity_period:
        # Counted from when the message was stored: the time it waited on our side is already spent.
        waited = int((timezone.now() - message.created_at).total_seconds())
        params["validity_period"] = max(1, min(36_000, message.validity_period - max(0, waited)))
    return params


def _hand_over(message: Message, client) -> str:
    params = _create_params(message)
    try:
        with twilio_call():
            created = client.api.v2010.accounts(message.account.account_sid).messages.create(**params)
    except TwilioError as error:
        return _handle_error(message, error)
    return _take_answer(message, created)


def deliver_many(message_ids) -> dict[int, str | float]:
    """Hand a batch of stored messages to Twilio: ``deliver`` for each, with the batch's reads and claims
    shared. Returns ``{id: outcome}``: a word as ``deliver`` returns, or the seconds to wait (a float) for a
    message that must be tried again later (throttled, a retryable error, a hand-over in flight).

    Every message gets every check of ``deliver`` (consent at send time, the account, the sender's
    allowance); the messages are read in one query (with their consent) and claimed in one committed UPDATE
    before the first Twilio request, so a worker killed in the middle of the batch leaves each message
    either unclaimed (sent by the next try) or claimed (reconciled with Twilio by the next try, never sent
    twice). The Twilio requests overlap, ``QUICKSEND_SEND_CONCURRENCY`` at a time (8), each thread reusing
    its own pooled HTTP session; the answers are stored in this thread, in order. A message an
    earlier run handed over (``handed_over_at`` set) goes through ``deliver`` alone, which reconciles it.
    """
    ids = sorted({int(i) for i in message_ids})
    outcomes: dict[int, str | float] = dict.fromkeys(ids, "missing")
    ready: list[Message] = []
    candidates: list[Message] = []
    for message in _to_deliver().filter(pk__in=ids).order_by("pk"):
        if message.status_rank > 0 or message.sid:
            outcomes[message.pk] = "done"
        elif message.account is None or message.handed_over_at is not None:
            outcomes[message.pk] = _deliver_alone(message.pk)
        elif refused := _refuse_at_send_time(message, message.account):
            outcomes[message.pk] = refused
        else:
            candidates.append(message)
    # The senders' allowances, in one trip for the batch.
    waits = throttle.take_many(
        [(m.conversation.phone_number.pk, m.conversation.phone_number.number_type, m.num_segments)
         for m in candidates]
    )  # fmt: skip
    for message, wait in zip(candidates, waits, strict=True):
        if wait > 0:
            outcomes[message.pk] = wait + random.uniform(0, 0.01)  # noqa: S311 - jitter
        else:
            ready.append(message)
    claimed = _claim_many(ready)
    handed = []
    for message in ready:
        if message.pk in claimed:
            handed.append((message, _create_params(message)))
        else:
            outcomes[message.pk] = "claimed-elsewhere"
    # The Twilio requests of the batch overlap (a pool of threads, each with its own pooled HTTP session);
    # the database is written here, in this thread, as each answer is taken in order.
    # On PostgreSQL the accepted answers are stored together (``apply_statuses``: a few statements for the
    # whole batch, forward only, the SID attached); errors, and every answer elsewhere, one by one.
    together = connection.vendor == "postgresql"
    accepted: list[StatusUpdate] = []
    for message, answer in zip(
        [m for m, _p in handed], _requests().map(_create_at_twilio, handed), strict=True
    ):
        if together and not isinstance(answer, TwilioError):
            _accepted_by_twilio(message.pk, answer.sid)
            status = normalize_status(answer.status, MessageStatus.QUEUED)
            accepted.append(
                StatusUpdate(message.pk, answer.sid, status, None, timezone.now(), message.organization_id)
            )
            outcomes[message.pk] = "sent"
            continue
        try:
            outcomes[message.pk] = _take_answer(message, answer)
        except RetryLater as later:
            outcomes[message.pk] = later.countdown
    if accepted:
        with transaction.atomic():
            apply_statuses(accepted)
    return outcomes


_pool = None
_pool_lock = threading.Lock()


def _requests() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=max(1, int(settings.QUICKSEND_SEND_CONCURRENCY)),
                thread_name_prefix="twilio-send",
            )
    return _pool


def _create_at_twilio(item):
    """In a pool thread: only the HTTP request (no database), with the thread's own client."""
    from messaging.twilio.client import client_for_account

    message, params = item
    try:
        client = client_for_account(message.account)
        with twilio_call():
            return client.api.v2010.accounts(message.account.account_sid).messages.create(**params)
    except TwilioError as error:
        return error


def _take_answer(message: Message, answer) -> str:
    if isinstance(answer, TwilioError):
        return _handle_error(message, answer)
    _accepted_by_twilio(message.pk, answer.sid)
    _adopt(message, answer.sid, normalize_status(answer.status, MessageStatus.QUEUED))
    return "sent"


def _deliver_alone(message_id: int) -> str | float:
    try:
        return deliver(message_id)
    except RetryLater as later:
        return later.countdown


def _claim_many(messages: list[Message]) -> set[int]:
    """``_claim`` for a batch of never-claimed messages: one UPDATE, committed before Twilio is called."""
    if not messages:
        return set()
    now = timezone.now()
    table = Message._meta.db_table
    # One statement in autocommit: committed before the first Twilio request. A row another worker claimed
    # meanwhile fails the condition (or, on PostgreSQL, is locked by it and skipped) and is not returned.
    # The rows are locked in id order, so two batches sharing messages never deadlock.
    ids = [m.pk for m in messages]
    claim = (
        f"UPDATE {table} SET handed_over_at = %s, send_attempts = send_attempts + 1 WHERE id IN ({{}}) "  # noqa: S608
        "AND status_rank = 0 AND sid IS NULL AND handed_over_at IS NULL RETURNING id"
    )
    when = connection.ops.adapt_datetimefield_value(now)
    if connection.vendor == "postgresql":
        locked = f"SELECT id FROM {table} WHERE id = ANY(%s) ORDER BY id FOR UPDATE SKIP LOCKED"  # noqa: S608
        sql = f"WITH locked AS MATERIALIZED ({locked}) " + claim.format("SELECT id FROM locked")
        params = [ids, when]
    else:
        sql, params = claim.format(", ".join(["%s"] * len(ids))), [when, *ids]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = [row[0] for row in cursor.fetchall()]
    mine = set(rows)
    for message in messages:
        if message.pk in mine:
            message.handed_over_at = now
            message.send_attempts += 1
    return mine
