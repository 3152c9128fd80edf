"""History sync: pull each number's message history from Twilio so texts sent or received by other tools on
the same number appear in their conversations.

Per number, a *pass* lists the account's messages ``To`` the number and ``From`` the number (two listings,
newest first) with ``DateSent >= high_water - OVERLAP``; the first pass of a number reaches back
``INITIAL_DAYS``. Work is bounded: at most ``MAX_PAGES_PER_RUN`` pages of ``PAGE_SIZE`` per number per run.
An unfinished pass stores the next page's URL per direction in ``HistorySyncState.resume`` (Twilio page
tokens are stable while new messages arrive) and continues there on the next run, so a failure or the budget
loses nothing. When both directions are done the high-water mark moves to the newest ``date_sent`` seen.

Storing is idempotent on the MessageSid (``Message.sid`` is unique): known SIDs are skipped, and an insert
that loses a race with the webhook is dropped inside a savepoint. Synced messages have ``source="sync"``; they
are recorded like every message (``messaging.inbox.conversations.record_message``: an older message never
overwrites a newer preview), quietly: filed in their session, no notifications.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from messaging.inbox.conversations import get_or_create_conversation, record_message
from messaging.models import (
    HistorySyncState,
    Message,
    MessageStatus,
    PhoneNumber,
    TwilioAccount,
)
from messaging.services.status import normalize_status
from messaging.twilio.client import client_for_account
from messaging.twilio.errors import TRANSLATED, TwilioError, classify

log = logging.getLogger(__name__)

PAGE_SIZE = 100
MAX_PAGES_PER_RUN = 10
OVERLAP = timedelta(hours=1)
INITIAL_DAYS = 90


# Messages younger than this are left to the next run (the overlap re-reads them): one we are sending may not
# have its SID stored yet, and an inbound one may still be in its webhook's processing, which downloads the
# media that a synced copy would lack.
def settle_window() -> timedelta:
    return timedelta(seconds=settings.QUICKSEND_HISTORY_SYNC_SETTLE_SECONDS)


# Listing filters per direction (twilio-python spells From as ``from_``).
DIRECTIONS = {"to": "to", "from": "from_"}


def _state_for(number: PhoneNumber) -> HistorySyncState:
    state, _ = HistorySyncState.objects.get_or_create(
        phone_number=number, defaults={"organization_id": number.organization_id}
    )
    return state


def store_twilio_message(number: PhoneNumber, item) -> Message | None:
    """Store one Twilio message record (twilio-python ``MessageInstance``) if its SID is new. Returns the new
    Message, or None when it was already stored."""
    inbound = (item.direction or "").startswith("inbound")
    customer = item.from_ if inbound else item.to
    created = item.date_created or item.date_sent
    if created is not None and created > timezone.now() - settle_window():
        return None
    if not customer or Message.objects.filter(sid=item.sid).exists():
        return None
    when = item.date_sent or item.date_created or timezone.now()
    with transaction.atomic():
        conversation, created = get_or_create_conversation(number, customer)
        # None: the webhook (or a concurrent sync) stored this SID first.
        return record_message(
            conversation,
            new_conversation=created,
            happened_at=when,
            quiet=True,
            account_id=number.account_id,
            direction=Message.Direction.INBOUND if inbound else Message.Direction.OUTBOUND,
            source=Message.Source.SYNC,
            status=normalize_status(item.status, MessageStatus.SENT),
            sid=item.sid,
            from_number=item.from_ or "",
            to_number=item.to or "",
            body=item.body or "",
            num_segments=int(item.num_segments or 1),
            num_media=int(item.num_media or 0),
            error_code=int(item.error_code) if item.error_code else None,
            sent_at=item.date_sent,
        )


def sync_number(
    number: PhoneNumber, *, max_pages: int = MAX_PAGES_PER_RUN, now: datetime | None = None
) -> dict:
    """One bounded run of the history sync of ``number``. Returns {"pages", "imported", "done", "error"}."""
    now = now or timezone.now()
    state = _state_for(number)
    stats = {"pages": 0, "imported": 0, "done": False, "error": ""}
    client = client_for_account(number.account)
    since = (state.high_water - OVERLAP) if state.high_water else now - timedelta(days=INITIAL_DAYS)
    if not state.resume:
        state.resume = {d: None for d in DIRECTIONS}  # None: not started, "": finished, URL: next page
        state.pass_newest = None
    try:
        for direction in DIRECTIONS:
            while state.resume.get(direction) != "" and stats["pages"] < max_pages:
                url = state.resume.get(direction)
                if url:
                    page = client.messages.get_page(url)
                else:
                    page = client.messages.page(
                        **{DIRECTIONS[direction]: number.phone_number},
                        date_sent_after=since,
                        page_size=PAGE_SIZE,
                    )
                newest = state.pass_newest
                for item in page:
                    if store_twilio_message(number, item) is not None:
                        stats["imported"] += 1
                    if item.date_sent and (newest is None or item.date_sent > newest):
                        newest = item.date_sent
                stats["pages"] += 1
                state.pass_newest = newest
                state.resume[direction] = page.next_page_url or ""
                # Saved after every page: a failure on the next page resumes here.
                state.save(update_fields=["resume", "pass_newest"])
    except (TwilioError, *TRANSLATED) as exc:  # recorded; the next run resumes at the saved page
        stats["error"] = classify(exc).message[:300]
        log.warning("history sync of number %s failed: %s", number.pk, stats["error"])
    if not stats["error"] and all(state.resume.get(d) == "" for d in DIRECTIONS):
        if state.pass_newest is not None:
            state.high_water = max(state.high_water or state.pass_newest, state.pass_newest)
        state.resume = {}
        state.pass_newest = None
        stats["done"] = True
    state.last_run_at = now
    state.last_error = stats["error"]
    state.messages_imported += stats["imported"]
    state.save()
    return stats


def numbers_to_sync(org_id: int | None = None):
    qs = PhoneNumber.objects.filter(
        is_active=True, sms_capable=True, account__status=TwilioAccount.Status.VALID
    ).select_related("account")
    if org_id is not None:
        qs = qs.filter(organization_id=org_id)
    return qs.order_by("pk")
