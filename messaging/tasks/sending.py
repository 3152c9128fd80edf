"""Celery tasks: sending. ``send_message_task(message_id)`` hands one stored message to Twilio.

The order of steps is what makes it safe (docs/messaging.md "Sending"):

1. Re-read the message: only a ``pending`` message without a SID is sent (a duplicate or late task does
   nothing).
2. If ``handed_over_at`` is already set, an earlier run may have died after Twilio accepted the message but
   before the SID was stored: reconcile with Twilio first (list by To/From/DateSent, match body and time)
   and adopt the SID if it is there. Only a message Twilio does not have is sent again.
3. Consent again, at send time (a message queued before a STOP is not sent: it fails with the reason).
4. The sender number's token bucket (``messaging.services.throttle``); when short, retry later.
5. Claim the message by setting ``handed_over_at`` (a conditional UPDATE, committed) BEFORE calling Twilio.
6. Create the message at Twilio with ``StatusCallback = status_callback_url() + "?m=<our id>"``; store the
   SID and status through ``apply_status``.
7. Errors: retryable ones (429/20429, 5xx, network, 21611) retry with exponential backoff and jitter up to
   ``SEND_MAX_ATTEMPTS`` tries, then fail; permanent ones fail at once with the plain reason; 21610 also
   records an opt-out; 20003 marks the account invalid and tells its admins.
"""

from __future__ import annotations

import logging
import random
import time
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from messaging.models import Message, MessageStatus, TwilioAccount
from messaging.services import throttle
from messaging.services.consent import contact_refusal
from messaging.services.status import apply_status
from messaging.twilio.errors import TwilioError, twilio_call
from messaging.twilio.public_urls import status_callback_url

log = logging.getLogger(__name__)

SEND_MAX_ATTEMPTS = 6
# Twilio's clock against ours, and the 1-second resolution of its dates: how far before ``handed_over_at`` a
# message found at Twilio may have been created and still be ours.
RECONCILE_MARGIN = timedelta(minutes=2)

# Sent (after commit) when Twilio says an account's credentials no longer work (20003): the inbox connects a
# receiver that notifies the organization's admins in the app. kwargs: organization_id, account_id, message.
twilio_account_invalidated = Signal()


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


def _twilio_status(status: str | None) -> str:
    return status if status in (MessageStatus.values) else MessageStatus.QUEUED


def notify_account_invalid(account: TwilioAccount, error: TwilioError) -> None:
    """Twilio refused the account's credentials (20003): mark it invalid (audited) and tell its admins, once
    (a retried task, or the next message, finds the account already invalid)."""
    from messaging.signals import send_after_commit
    from messaging.twilio.accounts import do_mark_twilio_account_invalid

    with transaction.atomic():
        if not do_mark_twilio_account_invalid(account, error):
            return
        send_after_commit(
            twilio_account_invalidated,
            organization_id=account.organization_id,
            account_id=account.pk,
            message=error.message,
        )


class _RetryLater(Exception):
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
            raise _RetryLater(countdown)
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


@shared_task(bind=True, max_retries=None, acks_late=True)
def send_message_task(self, message_id: int) -> str:
    """Hand message ``message_id`` to Twilio (see the module docstring). Returns what happened, in a word.

    Throttled or retryable: the task is retried later (``self.retry(countdown=…)``), never sleeping in a
    worker. Embedded mode runs tasks inline with no broker to schedule a retry on, so there it waits in
    place (at most 5 s per wait).
    """
    while True:
        try:
            return _attempt(message_id)
        except _RetryLater as later:
            if not self.request.is_eager:
                raise self.retry(countdown=later.countdown, max_retries=None)
            time.sleep(min(later.countdown, 5.0))


def _attempt(message_id: int) -> str:
    message = (
        Message.objects.select_related("account", "organization", "conversation__phone_number")
        .filter(pk=message_id, direction=Message.Direction.OUTBOUND)
        .first()
    )
    if message is None:
        return "missing"
    if message.status_rank > 0 or message.sid:
        return "done"  # already handed over (or failed, or canceled): never twice
    account = message.account
    if account is None:
        fail_message(message.pk, "The sender number's Twilio account was removed.")
        return "failed"

    from messaging.twilio.client import client_for_account

    if message.handed_over_at is not None:
        # A hand-over this recent may still be in flight in another worker (a task delivered twice): give
        # it time to finish rather than reconcile against a Twilio that has not answered it yet.
        age = (timezone.now() - message.handed_over_at).total_seconds()
        if age < _in_flight_seconds():
            raise _RetryLater(_in_flight_seconds() - age + random.uniform(0, 1))  # noqa: S311
    try:
        client = client_for_account(account)
        if message.handed_over_at is not None:
            found = _reconcile(message, client)
            if found:
                _adopt(message, found, MessageStatus.QUEUED)
                return "reconciled"
    except TwilioError as error:
        return _handle_error(message, error)

    refusal = contact_refusal(
        message.organization_id, message.to_number, keyword_reply=message.source == Message.Source.AUTO_REPLY
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

    number = message.conversation.phone_number
    wait = throttle.take(number.pk, number.number_type, message.num_segments)
    if wait > 0:
        raise _RetryLater(wait + random.uniform(0, 0.05))  # noqa: S311 - jitter

    # Claim it: commit handed_over_at before Twilio is called, so a retry after a crash knows to reconcile.
    now = timezone.now()
    claimed = (
        Message.objects.filter(pk=message.pk, status_rank=0, sid__isnull=True)
        .filter(handed_over_at=message.handed_over_at)
        .update(handed_over_at=now, send_attempts=message.send_attempts + 1)
    )
    if not claimed:
        return "claimed-elsewhere"
    message.handed_over_at = now
    message.send_attempts += 1

    params = {
        "to": message.to_number,
        "from_": message.from_number,
        "status_callback": _status_callback(message.pk),
    }
    if message.body:
        params["body"] = message.body
    if message.num_media:
        params["media_url"] = _media_urls(message)
    try:
        with twilio_call():
            created = client.api.v2010.accounts(account.account_sid).messages.create(**params)
    except TwilioError as error:
        return _handle_error(message, error)
    _accepted_by_twilio(message.pk, created.sid)
    _adopt(message, created.sid, _twilio_status(created.status))
    return "sent"
