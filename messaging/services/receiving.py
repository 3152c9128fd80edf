"""Receiving: inbound texts (processing what the webhook stored), messages another tool sent from our numbers,
the stuck-message poller, and the last delivery status a CRM record shows.

The webhooks' request path and the drains that call into this module are ``messaging.twilio.ingest``
(docs/messaging.md "Receiving"): the webhook stores the form Twilio posted as an ``InboundEvent`` with one
statement; inserting the ``Message`` directly would need our number, the conversation (get-or-create, a
record match) and its denormalized preview first: four to six queries on the request path instead of one.
"""

from __future__ import annotations

import logging
import mimetypes
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from crm.phones import try_normalize_phone
from messaging.inbox.conversations import get_or_create_conversation, touch_conversation
from messaging.media.safe_fetch import FetchError, fetch
from messaging.media.validation import MediaError, content_type_for
from messaging.models import (
    STATUS_RANK,
    ConsentEvent,
    Conversation,
    InboundEvent,
    Message,
    MessageMedia,
    MessageStatus,
    MessagingSettings,
    PhoneNumber,
    TwilioAccount,
)
from messaging.services import sending
from messaging.services.consent import consent_state, do_change_consent
from messaging.services.keywords import KeywordAction, find_keyword, match_keyword
from messaging.services.matching import match_records
from messaging.services.status import apply_status
from messaging.signals import inbound_message_stored, outbound_message_created, send_after_commit
from messaging.twilio.client import account_api, client_for_account
from messaging.twilio.errors import TwilioError, describe_code, twilio_call
from quicksend import crypto
from tenancy.models import Organization

log = logging.getLogger(__name__)

# Twilio accepts at most 5 MB per MMS; the cap leaves room for a carrier's larger original.
INBOUND_MEDIA_MAX_BYTES = 10_000_000
INBOUND_MEDIA_MAX_ITEMS = 10
MEDIA_TIMEOUT_SECONDS = 20.0
STUCK_AFTER_HOURS = 12
STUCK_GIVE_UP_DAYS = 7


# --- Processing (tasks) ----------------------------------------------------------------------------------


@dataclass
class _Download:
    url: str
    declared_type: str
    data: bytes | None = None
    content_type: str = ""
    error: str = ""


def _our_number(account: TwilioAccount, to: str) -> PhoneNumber | None:
    """Our number a text was sent to: of the account's organization (a Messaging Service pool may hold any of
    its numbers), active ones first. An unknown number triggers one number sync."""

    def lookup() -> PhoneNumber | None:
        return (
            PhoneNumber.objects.filter(organization_id=account.organization_id, phone_number=to)
            .order_by("-is_active", "id")
            .first()
        )

    number = lookup()
    if number is None:
        from messaging.twilio.accounts import do_refresh_numbers

        try:
            do_refresh_numbers(account, None)
        except TwilioError as exc:
            log.warning("number sync for %s failed: %s", account.account_sid, exc)
        number = lookup()
    return number


def _download_media(account: TwilioAccount, payload: dict) -> list[_Download]:
    """Every media item of an inbound MMS, fetched with the account's credentials (redirects followed, size
    capped). A failed download is kept with its reason, never fatal to the message."""
    try:
        count = min(int(payload.get("NumMedia") or 0), INBOUND_MEDIA_MAX_ITEMS)
    except ValueError:
        count = 0
    items = [
        _Download(payload.get(f"MediaUrl{i}", ""), payload.get(f"MediaContentType{i}", ""))
        for i in range(count)
    ]
    if not items:
        return items
    try:
        token = account.get_auth_token()
    except crypto.SecretUnreadable:
        token = None
    for item in items:
        if not item.url:
            item.error = "Twilio sent no link for this attachment."
            continue
        try:
            result = fetch(
                item.url,
                auth=(account.account_sid, token) if token else None,
                max_bytes=INBOUND_MEDIA_MAX_BYTES,
                timeout=MEDIA_TIMEOUT_SECONDS,
                # Our own sandbox may be on a private address: that origin only, never where it redirects.
                private_origin=settings.TWILIO_API_BASE_URL or None,
            )
        except FetchError as exc:
            item.error = exc.message[:300]
            continue
        item.data = result.content
        declared = item.declared_type or result.content_type or ""
        try:
            # The one content-type rule of outbound media: the bytes decide, the label picks within a family.
            item.content_type = content_type_for(result.content, filename="", declared_type=declared or None)
        except MediaError:
            # Twilio accepted it from the carrier: keep its label rather than refuse a customer's file.
            item.content_type = declared.lower() or "application/octet-stream"
    return items


def _media_name(index: int, item: _Download) -> str:
    sid = item.url.rstrip("/").rsplit("/", 1)[-1] if item.url else ""
    stem = sid if sid.startswith("ME") and len(sid) <= 40 else f"media-{index}"
    ext = mimetypes.guess_extension(item.content_type or item.declared_type or "") or ""
    return f"{stem}{ext}"


def process_inbound_event(event_id: int) -> Message | None:
    """Turn a stored inbound webhook into a message in its conversation (idempotent; safe to run twice).

    Matches the customer number to records, gets or creates the conversation race-free, stores every media
    item, applies consent keywords (Twilio's ``OptOutType`` wins), then sends ``inbound_message_stored``
    after commit (``blocked=True`` for blocked numbers, so nothing is notified) and any automatic reply.
    """
    event = InboundEvent.objects.select_related("organization", "account").filter(pk=event_id).first()
    if event is None:
        return None
    if event.processed_at is not None:
        return Message.objects.filter(sid=event.message_sid).first()
    # A message already stored under this SID (a second run, the history sync) is found by the unique
    # constraint on insert below, not by a query on every event.
    payload, org, account = event.payload, event.organization, event.account
    number = _our_number(account, payload.get("To", ""))
    if number is None:
        InboundEvent.objects.filter(pk=event.pk).update(
            error=f"{payload.get('To')} is not one of this organization's numbers (even after a sync).",
        )
        return None
    raw_from = payload.get("From", "")
    customer = try_normalize_phone(raw_from) or raw_from
    downloads = _download_media(account, payload)
    match = match_records(org, customer)
    action = match_keyword(payload.get("Body"), payload.get("OptOutType"))

    with transaction.atomic():
        conversation, created = get_or_create_conversation(number, customer, **match.as_conversation_fields())
        if not created and conversation.record_id is None and match.record_id is not None:
            Conversation.objects.filter(pk=conversation.pk, record_id__isnull=True).update(
                **match.as_conversation_fields()
            )
        try:
            with transaction.atomic():
                message = Message.objects.create(
                    organization=org,
                    conversation=conversation,
                    account=account,
                    direction=Message.Direction.INBOUND,
                    source=Message.Source.CUSTOMER,
                    status=MessageStatus.RECEIVED,
                    status_rank=STATUS_RANK[MessageStatus.RECEIVED],
                    sid=event.message_sid,
                    from_number=customer,
                    to_number=number.phone_number,
                    body=payload.get("Body", ""),
                    num_segments=_small_int(payload.get("NumSegments"), 1),
                    num_media=len(downloads),
                )
        except IntegrityError:
            # Another worker, or the history sync (which does not download media), stored this MessageSid a
            # moment ago: keep that row, and give it the media only the webhook carries.
            message = Message.objects.get(sid=event.message_sid)
            if downloads and not message.media.exists():
                _store_media(org, message, downloads)
                Message.objects.filter(pk=message.pk).update(num_media=len(downloads))
            _mark_processed(event, message)
            return message
        _store_media(org, message, downloads)
        touch_conversation(conversation, message)
        _apply_keyword(org, customer, message, action, payload.get("Body", ""))
        state = consent_state(org, customer)
        blocked = bool(state and state.blocked)
        _mark_processed(event, message)
        send_after_commit(
            inbound_message_stored,
            message_id=message.pk,
            conversation_id=conversation.pk,
            organization_id=org.pk,
            created_conversation=created,
            blocked=blocked,
        )
    # With Twilio's Advanced Opt-Out (the webhook carries OptOutType) Twilio has already answered the keyword
    # itself and refuses further texts after a STOP (21610): a reply of ours would be a duplicate or fail.
    if not blocked and not payload.get("OptOutType"):
        _keyword_reply(org, conversation, action)
    return message


def _store_media(org: Organization, message: Message, downloads) -> None:
    for index, item in enumerate(downloads):
        media = MessageMedia(
            organization=org,
            message=message,
            content_type=(item.content_type or item.declared_type or "application/octet-stream")[:100],
            source_url=item.url[:500],
            error=item.error,
            filename=_media_name(index, item)[:200],
        )
        if item.data is not None:
            media.size = len(item.data)
            media.file.save(media.filename, ContentFile(item.data), save=False)
        media.save()


def _small_int(value, default: int) -> int:
    try:
        return max(0, min(int(value), 32767))
    except (TypeError, ValueError):
        return default


def _mark_processed(event: InboundEvent, message: Message) -> None:
    InboundEvent.objects.filter(pk=event.pk).update(message=message, processed_at=timezone.now(), error="")


_CONSENT_ACTION = {
    KeywordAction.OPT_OUT: ConsentEvent.Action.OPT_OUT,
    KeywordAction.OPT_IN: ConsentEvent.Action.OPT_IN,
    KeywordAction.HELP: ConsentEvent.Action.HELP,
}


def _apply_keyword(
    org: Organization, customer: str, message: Message, action: KeywordAction, body: str
) -> None:
    if action == KeywordAction.NONE:
        return
    keyword = find_keyword(body)[1] or {"opt_out": "STOP", "opt_in": "START", "help": "HELP"}[action]
    do_change_consent(
        org, customer, _CONSENT_ACTION[action], ConsentEvent.Method.KEYWORD, message=message, keyword=keyword
    )


def _keyword_reply(org: Organization, conversation: Conversation, action: KeywordAction) -> None:
    if action == KeywordAction.NONE:
        return
    row = MessagingSettings.objects.filter(organization=org).values(
        "opt_out_reply", "opt_in_reply", "help_reply"
    )
    replies = row.first() or {}
    body = replies.get(
        {
            KeywordAction.OPT_OUT: "opt_out_reply",
            KeywordAction.OPT_IN: "opt_in_reply",
            KeywordAction.HELP: "help_reply",
        }[action],
        "",
    )
    if body:
        send_auto_reply(org, conversation, body)


def send_auto_reply(org: Organization, conversation: Conversation, body: str):
    """Send an automatic reply in ``conversation`` through the one send service (SEND's
    ``do_send_message``), as source ``auto_reply``. A failure is logged, never raised: the inbound message
    is stored either way."""
    try:
        return sending.do_send_message(
            org, source=Message.Source.AUTO_REPLY, conversation=conversation, body=body
        )
    except Exception:
        log.exception("automatic reply in conversation %s failed", conversation.pk)
        return None


# --- Messages another tool sent from our numbers ----------------------------------------------------------


def record_other_tool_message(account_id: int, sid: str) -> Message | None:
    """A status callback named a message we never stored: fetch it from Twilio and record it (source
    ``other_tool``) in its conversation, so the thread shows what the customer really received."""
    if Message.objects.filter(sid=sid).exists():
        return None
    account = TwilioAccount.objects.filter(pk=account_id).first()
    if account is None:
        return None
    with twilio_call():
        data = account_api(client_for_account(account), account.account_sid).messages(sid).fetch()
    if not str(data.direction or "").startswith("outbound"):
        log.info("status callback for non-outbound message %s ignored", sid)
        return None
    number = PhoneNumber.objects.filter(
        organization_id=account.organization_id, phone_number=data.from_
    ).first()
    if number is None:
        log.info("message %s was sent from %s, not one of our numbers", sid, data.from_)
        return None
    customer = try_normalize_phone(data.to) or data.to
    status = data.status if data.status in STATUS_RANK else MessageStatus.SENT
    error_code = int(data.error_code) if data.error_code else None
    with transaction.atomic():
        conversation, _ = get_or_create_conversation(number, customer)
        try:
            with transaction.atomic():
                message = Message.objects.create(
                    organization_id=account.organization_id,
                    conversation=conversation,
                    account=account,
                    direction=Message.Direction.OUTBOUND,
                    source=Message.Source.OTHER_TOOL,
                    status=status,
                    status_rank=STATUS_RANK[status],
                    sid=sid,
                    from_number=number.phone_number,
                    to_number=customer,
                    body=data.body or "",
                    num_segments=_small_int(data.num_segments, 1),
                    num_media=_small_int(data.num_media, 0),
                    error_code=error_code,
                    error_message=describe_code(error_code)[:300] if error_code else "",
                    sent_at=data.date_sent,
                    delivered_at=data.date_updated if status == MessageStatus.DELIVERED else None,
                    failed_at=data.date_updated
                    if status in (MessageStatus.FAILED, MessageStatus.UNDELIVERED)
                    else None,
                )
        except IntegrityError:
            return None  # a concurrent callback's task recorded it
        if data.date_created:
            Message.objects.filter(pk=message.pk).update(created_at=data.date_created)
            message.created_at = data.date_created
        touch_conversation(conversation, message)
        send_after_commit(
            outbound_message_created,
            message_id=message.pk,
            conversation_id=conversation.pk,
            organization_id=account.organization_id,
            sender_id=None,
        )
    return message


# --- Stuck messages ----------------------------------------------------------------------------------------


def poll_stuck_messages(limit: int = 200, now: datetime | None = None) -> dict:
    """Ask Twilio about messages short of a final status for more than 12 hours (at most ``limit`` per run,
    oldest first; the partial index ``message_not_final`` serves the query) and apply what it says.

    Each checked message gets ``updated_at`` bumped even when nothing changed, so the next run moves on to
    others; after ``STUCK_GIVE_UP_DAYS`` a message is no longer polled (carriers that never report delivery
    leave messages at ``sent`` for good).
    """
    from datetime import timedelta

    now = now or timezone.now()
    stuck = list(
        Message.objects.filter(
            status_rank__lt=STATUS_RANK[MessageStatus.DELIVERED],
            updated_at__lt=now - timedelta(hours=STUCK_AFTER_HOURS),
            created_at__gte=now - timedelta(days=STUCK_GIVE_UP_DAYS),
            sid__isnull=False,
            account__isnull=False,
        )
        .select_related("account")
        .order_by("updated_at")[:limit]
    )
    stats = {"checked": 0, "updated": 0, "errors": 0}
    clients: dict[int, object] = {}
    broken_accounts: set[int] = set()
    for message in stuck:
        if message.account_id in broken_accounts:
            continue
        stats["checked"] += 1
        try:
            if message.account_id not in clients:
                clients[message.account_id] = account_api(
                    client_for_account(message.account), message.account.account_sid
                )
            with twilio_call():
                data = clients[message.account_id].messages(message.sid).fetch()
        except TwilioError as exc:
            stats["errors"] += 1
            if exc.kind in ("auth", "secret_unreadable"):
                broken_accounts.add(message.account_id)
            Message.objects.filter(pk=message.pk, status_rank=message.status_rank).update(updated_at=now)
            continue
        error_code = int(data.error_code) if data.error_code else None
        if apply_status(
            message.pk,
            message.sid,
            data.status,
            error_code=error_code,
            at=data.date_updated,
            fast_commit=True,
        ):
            stats["updated"] += 1
        else:
            Message.objects.filter(pk=message.pk, status_rank=message.status_rank).update(updated_at=now)
    return stats


# --- What a CRM record shows ---------------------------------------------------------------------------


def last_message_status_for_record(org: Organization, record_type: str, record_id: int) -> dict | None:
    """The delivery status of the last message in the record's conversations (matched or "regarding"), as
    ``{"status", "direction", "at", "error_message"}``; None when the record has no messages."""
    from django.db.models import Q

    conversation = (
        Conversation.objects.filter(organization=org, last_message_at__isnull=False)
        .filter(
            Q(record_type=record_type, record_id=record_id)
            | Q(regarding_type=record_type, regarding_id=record_id)
        )
        .order_by("-last_message_at", "-id")
        .first()
    )
    if conversation is None:
        return None
    message = (
        Message.objects.filter(conversation=conversation)
        .order_by("-created_at", "-id")
        .values("status", "direction", "created_at", "error_message")
        .first()
    )
    if message is None:
        return None
    return {
        "status": message["status"],
        "direction": message["direction"],
        "at": message["created_at"],
        "error_message": message["error_message"],
    }
