"""Inbound texts a batch at a time: what the inbound drain does with the events it leased.

``process_inbound_event`` (messaging/services/receiving.py) turns one stored webhook into a message, and the
inbox files it after commit (its own transaction, re-reading everything): about 23 queries and 35 ms of CPU
per text. Here a whole batch of plain texts (no media to download, no consent keyword, our number known)
is done in ONE transaction with a constant number of statements: the conversations are read and locked
together (one lock per conversation, in id order), the missing ones created with one INSERT, the messages
inserted with one INSERT (``ON CONFLICT (sid) DO NOTHING``: a retried webhook is still one message), the
conversations' previews touched with one UPDATE, the events marked processed with one UPDATE, and the
inbox's bookkeeping (``messaging.inbox.inbound_batch``: sessions, unread counts, notifications, live
events) done in the same transaction instead of after it, with the values this module already holds.

Everything commits together or not at all: a worker killed in the middle leaves every event of its batch
unprocessed (their lease runs out and another drain takes them), so no text is lost or stored twice. A text
that needs more (an MMS, a STOP/START/HELP keyword, a number we must first sync) goes through
``process_inbound_event`` in its place in the batch, so texts of one conversation keep their order. When a
batch fails as a whole (a deadlock with another drain creating the same conversation), each of its texts
is processed on its own the old way.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from crm.texting import try_organization_phone
from messaging.inbox.conversations import touch_conversations
from messaging.models import (
    STATUS_RANK,
    ConsentState,
    Conversation,
    InboundEvent,
    InboxStep,
    Message,
    MessageStatus,
    PhoneNumber,
)
from messaging.services.keywords import KeywordAction, match_keyword
from messaging.services.matching import match_records_for_numbers
from messaging.signals import inbound_message_stored
from quicksend import queue
from quicksend.bulk import insert_returning

log = logging.getLogger(__name__)


class InboundText:
    """One leased inbound event: its row, what it says, and what processing found for it."""

    __slots__ = ("event_id", "organization_id", "account_id", "sid", "payload", "number", "customer")

    def __init__(self, event_id, organization_id, account_id, sid, payload) -> None:
        self.event_id, self.organization_id, self.account_id, self.sid = (
            event_id,
            organization_id,
            account_id,
            sid,
        )
        self.payload = json.loads(payload) if isinstance(payload, str) else payload
        self.number: PhoneNumber | None = None
        self.customer = ""


def process_inbound_events(rows: list[tuple], process_one: Callable[[int], object], each) -> tuple[int, int]:
    """Process leased inbound events ``(id, organization_id, account_id, message_sid, payload)`` in their
    order: runs of plain texts as one transaction each (``_store_texts``), any other event through
    ``process_one(event_id)``. ``each(items, handle)`` runs ``handle`` per item the way the drain does
    (counts, records failures, leaves them to their lease). Returns (processed, failed)."""
    texts = [InboundText(*row) for row in rows]
    _find_numbers(texts)
    done = failed = 0
    run: list[InboundText] = []

    def flush() -> None:
        nonlocal done, failed
        if not run:
            return
        try:
            _store_texts(list(run))
            done += len(run)
        except Exception as exc:
            if isinstance(exc, transaction.TransactionManagementError):
                raise
            log.warning(
                "a batch of %d inbound texts failed; processing them one by one", len(run), exc_info=True
            )
            if not connection.in_atomic_block:
                connection.close_if_unusable_or_obsolete()
            counts = each([t.event_id for t in run], process_one)
            done, failed = done + counts[0], failed + counts[1]
        run.clear()

    for text in texts:
        if _plain(text):
            run.append(text)
            continue
        flush()
        counts = each([text.event_id], process_one)
        done, failed = done + counts[0], failed + counts[1]
    flush()
    return done, failed


def _plain(text: InboundText) -> bool:
    """A text the batch can store as it is: our number is known, no media, no consent keyword."""
    payload = text.payload
    if text.number is None or not payload.get("From") or str(payload.get("NumMedia") or "0") != "0":
        return False
    return match_keyword(payload.get("Body"), payload.get("OptOutType")) == KeywordAction.NONE


def _find_numbers(texts: list[InboundText]) -> None:
    """Our number each text was sent to (active ones first), in one query; the customer's number in E.164."""
    wanted = {(t.organization_id, t.payload.get("To", "")) for t in texts}
    found: dict[tuple[int, str], PhoneNumber] = {}
    numbers = PhoneNumber.objects.filter(
        organization_id__in={org for org, _ in wanted}, phone_number__in={to for _, to in wanted}
    ).order_by("-is_active", "id")
    for number in numbers:
        found.setdefault((number.organization_id, number.phone_number), number)
    for text in texts:
        text.number = found.get((text.organization_id, text.payload.get("To", "")))
        raw = text.payload.get("From", "")
        text.customer = try_organization_phone(text.organization_id, raw) or raw


def _small_int(value, default: int) -> int:
    try:
        return max(0, min(int(value), 32767))
    except (TypeError, ValueError):
        return default


def _store_texts(texts: list[InboundText]) -> None:
    from messaging.inbox.inbound_batch import InboundGroup, file_inbound_texts
    from quicksend import realtime

    with realtime.collect(), transaction.atomic():
        conversations, created = _conversations(texts)
        messages = _insert_messages(texts, conversations)
        stored = [(t, m) for t, m in zip(texts, messages, strict=True) if m is not None]
        _touch(stored, conversations)
        blocked = _blocked({(t.organization_id, t.customer) for t, _ in stored})
        groups: dict[int, InboundGroup] = {}
        for text, message in stored:
            conversation = conversations[(text.number.pk, text.customer)]
            group = groups.get(conversation.pk)
            if group is None:
                group = groups[conversation.pk] = InboundGroup(
                    conversation,
                    created=conversation.pk in created,
                    blocked=(text.organization_id, text.customer) in blocked,
                )
            group.messages.append(message)
        _mark_processed(texts, messages)
        InboxStep.objects.bulk_create(
            [
                InboxStep(
                    organization_id=m.organization_id,
                    message_id=m.pk,
                    created_conversation=groups[m.conversation_id].created and i == 0,
                    blocked=groups[m.conversation_id].blocked,
                    done_at=m.created_at,
                    last_tried_at=m.created_at,
                )
                for group in groups.values()
                for i, m in enumerate(group.messages)
            ],
            ignore_conflicts=True,
        )
        file_inbound_texts(list(groups.values()))
        # Other features (automations, campaigns) hear of every text once the batch is committed; the inbox
        # has filed it already. Their tasks go out one per batch, not one per text.
        announcements = [
            (message, group.created and i == 0, group.blocked)
            for group in groups.values()
            for i, message in enumerate(group.messages)
        ]
        transaction.on_commit(lambda: _announce_all(announcements))


def _announce_all(announcements: list[tuple[Message, bool, bool]]) -> None:
    with queue.coalesce():
        for message, created_conversation, blocked in announcements:
            _announce(message, created_conversation, blocked)


def _announce(message: Message, created_conversation: bool, blocked: bool) -> None:
    for receiver, result in inbound_message_stored.send_robust(
        sender=None,
        message_id=message.pk,
        conversation_id=message.conversation_id,
        organization_id=message.organization_id,
        created_conversation=created_conversation,
        blocked=blocked,
        filed=True,
    ):
        if isinstance(result, Exception):
            log.error("messaging signal receiver %r failed", receiver, exc_info=result)


def _conversations(texts: list[InboundText]) -> tuple[dict[tuple[int, str], Conversation], set[int]]:
    """The current conversation of every (our number, customer) of the batch, locked (id order), the missing
    ones created: (conversations by key, ids of those this batch created). Records are matched for the new
    conversations and for existing ones that have none yet, as a single text does."""
    keys = {(t.number.pk, t.customer): t for t in texts}
    found: dict[tuple[int, str], Conversation] = {}
    for conversation in _locked(keys):
        found[(conversation.phone_number_id, conversation.customer_number)] = conversation
    unmatched = [k for k in keys if k not in found or found[k].record_id is None]
    matches = (
        match_records_for_numbers({(keys[k].organization_id, k[1]) for k in unmatched}) if unmatched else {}
    )
    for key, conversation in found.items():
        match = matches.get((conversation.organization_id, key[1]))
        if conversation.record_id is None and match is not None and match.record_id is not None:
            Conversation.objects.filter(pk=conversation.pk, record_id__isnull=True).update(
                **match.as_conversation_fields()
            )
            conversation.record_type, conversation.record_id = match.record_type, match.record_id
            conversation.other_matches = match.other_matches
    missing = [k for k in keys if k not in found]
    created: set[int] = set()
    if missing:
        new = []
        for key in missing:
            text = keys[key]
            match = matches.get((text.organization_id, key[1]))
            fields = match.as_conversation_fields() if match is not None else {}
            new.append(
                Conversation(
                    organization_id=text.organization_id,
                    phone_number=text.number,
                    customer_number=key[1],
                    **fields,
                )
            )
        ids = insert_returning(
            Conversation, new, "ON CONFLICT DO NOTHING", "id, phone_number_id, customer_number"
        )
        by_key = {(n, c): pk for pk, n, c in ids}
        for conversation in new:
            key = (conversation.phone_number_id, conversation.customer_number)
            if key in by_key:
                conversation.pk = by_key[key]
                conversation.owner, conversation.team = None, None
                found[key] = conversation
                created.add(conversation.pk)
        raced = [k for k in missing if k not in by_key]
        if raced:  # another drain created it a moment ago (and has committed): lock and use it
            for conversation in _locked(raced):
                found.setdefault((conversation.phone_number_id, conversation.customer_number), conversation)
    return found, created


def _locked(keys) -> list[Conversation]:
    """The current conversations of these (our number id, customer number) pairs, with their number, owner
    and team, locked in id order (so two drains never wait on each other in a circle)."""
    condition = Q()
    for number_id, customer in keys:
        condition |= Q(phone_number_id=number_id, customer_number=customer)
    return list(
        Conversation.objects.select_for_update(of=("self",))
        .select_related("phone_number", "owner", "team")
        .filter(condition, is_current=True)
        .order_by("pk")
    )


def _insert_messages(texts: list[InboundText], conversations) -> list[Message | None]:
    """Insert every text's message in one statement; None for a text whose MessageSid is stored already (a
    retried webhook, the history sync): that text's event is marked processed with the stored message."""
    messages = []
    for text in texts:
        payload = text.payload
        conversation = conversations[(text.number.pk, text.customer)]
        messages.append(
            Message(
                organization_id=text.organization_id,
                conversation=conversation,
                account_id=text.account_id,
                direction=Message.Direction.INBOUND,
                source=Message.Source.CUSTOMER,
                status=MessageStatus.RECEIVED,
                status_rank=STATUS_RANK[MessageStatus.RECEIVED],
                sid=text.sid,
                from_number=text.customer,
                to_number=text.number.phone_number,
                body=payload.get("Body", ""),
                num_segments=_small_int(payload.get("NumSegments"), 1),
                num_media=0,
            )
        )
    rows = insert_returning(Message, messages, "ON CONFLICT (sid) DO NOTHING", "id, sid")
    ids = dict((sid, pk) for pk, sid in rows)
    result: list[Message | None] = []
    for message in messages:
        pk = ids.pop(message.sid, None)  # pop: the same SID twice in one batch is one message
        if pk is None:
            result.append(None)
            continue
        message.pk = pk
        result.append(message)
    return result


def _touch(stored: list[tuple[InboundText, Message]], conversations) -> None:
    """``touch_conversations`` for the batch's messages; the instances follow (they are the live events'
    payload)."""
    changed = touch_conversations([message for _, message in stored])
    for conversation in {id(c): c for c in conversations.values()}.values():
        row = changed.get(conversation.pk)
        if row is not None:
            (
                conversation.last_message_at,
                conversation.last_message_preview,
                conversation.last_message_direction,
                conversation.last_message_status,
                conversation.last_message_source,
                conversation.last_message_source_label,
                conversation.status,
            ) = row


def _blocked(pairs: set[tuple[int, str]]) -> set[tuple[int, str]]:
    """The (organization, customer) pairs whose number the organization blocked: their texts are stored
    and notify no one."""
    if not pairs:
        return set()
    rows = ConsentState.objects.filter(
        organization_id__in={o for o, _ in pairs}, phone_number__in={c for _, c in pairs}, blocked=True
    ).values_list("organization_id", "phone_number")
    return {pair for pair in rows if pair in pairs}


def _mark_processed(texts: list[InboundText], messages: list[Message | None]) -> None:
    """Every event of the batch processed, with its message (one statement; a text whose SID was stored
    already gets that message, found with one more query)."""
    table = InboundEvent._meta.db_table
    known = {t.sid: m.pk for t, m in zip(texts, messages, strict=True) if m is not None}
    others = [t.sid for t in texts if t.sid not in known]
    if others:
        known.update(Message.objects.filter(sid__in=others).values_list("sid", "pk"))
    values = ", ".join(["(%s::bigint, %s::bigint)"] * len(texts))
    params = [v for t in texts for v in (t.event_id, known.get(t.sid))]
    sql = (
        f"UPDATE {table} AS e SET message_id = v.message_id, processed_at = %s, error = '' "  # noqa: S608
        f"FROM (VALUES {values}) AS v(id, message_id) WHERE e.id = v.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [timezone.now(), *params])
