"""Sending in batches: the service a campaign (or any worker job) calls to send many messages at once.

``send_many(org, recipients, source=..., ...)`` makes every check ``do_send_message`` makes, for every
recipient (the recipient's number and its records' do-not-contact and compliance fields, opt-out, blocked and
do-not-contact numbers, the sender number, the body, the idempotency key), but reads what it needs for the
whole batch in a handful of queries and stores the batch in ONE transaction with bulk inserts: the
conversations that do not exist yet, the messages (``pending``), each message's durable inbox step, one
audit row. After commit one task hands the batch to Twilio (``deliver_batch_task`` → ``deliver_many``) and
one task files the messages in the inbox (``file_outbound_batch_task``).

A refused recipient is reported, not raised: the others of the batch are still sent. A recipient whose key
already has a message (within the 24-hour window) gets that message back and nothing is stored or sent for
it: calling ``send_many`` again with the same batch (a dispatcher retried after a crash) sends nothing twice.

docs/messaging.md "Sending in batches" is the contract for callers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from crm.models import CrmRecord, RecordPhone, RecordTypeConfig, model_for
from crm.phones import InvalidPhoneNumber
from crm.texting import organization_phone, texting
from messaging.inbox import steps
from messaging.inbox.conversations import touch_conversations
from messaging.models import Conversation, InboxStep, Message, MessageMedia, MessageStatus, PhoneNumber
from messaging.segments import analyze
from messaging.services.consent import contact_refusals
from messaging.services.sending import (
    IDEMPOTENCY_WINDOW,
    SendRefused,
    _check_body,
    _lookup_number,
    _render_template,
    check_sender,
    chosen_sender,
)
from quicksend import queue
from templates_app.models import MessageTemplate
from templates_app.services import note_template_used
from tenancy import audit
from tenancy.models import Organization

MAX_BATCH = 1000


@dataclass(frozen=True)
class Recipient:
    """One message of a batch: to ``to`` (a number in any format; the contact type's default country
    applies) or to ``record`` (its SMS number; do-not-contact and the compliance field are honoured), saying
    ``body`` (or the batch's template, rendered for the record). ``key`` is required and names this
    recipient's step, e.g. ``"campaign:12:enrollment:345:step:2"``: the same key within 24 hours never sends
    twice."""

    key: str
    to: str | None = None
    record: CrmRecord | None = None
    body: str = ""
    media: tuple[StoredMedia, ...] = ()


@dataclass(frozen=True)
class StoredMedia:
    """An attachment already checked (``validate_media``) and stored, sent as it is with every message of the
    batch that names it: each message gets its own ``MessageMedia`` row pointing at the same stored file."""

    file: str  # the name in Django's storage
    filename: str
    content_type: str
    size: int


@dataclass
class BatchResult:
    """What became of each recipient of a batch, by key.

    ``queued``: stored now (``pending``) and queued for delivery; ``existing``: the key had a message already
    (returned, not sent again); ``refused``: ``{key: SendRefused}`` with the reason in plain words (nothing
    stored for them)."""

    queued: list[Message] = field(default_factory=list)
    existing: list[Message] = field(default_factory=list)
    refused: dict[str, SendRefused] = field(default_factory=dict)

    def message_for(self, key: str) -> Message | None:
        return next((m for m in self.queued + self.existing if m.idempotency_key == key), None)


@dataclass
class _Planned:
    recipient: Recipient
    e164: str
    record: CrmRecord | None
    matches: list[CrmRecord]
    number: PhoneNumber | None = None
    body: str = ""


def send_many(
    org: Organization,
    recipients: Sequence[Recipient],
    *,
    source: str,
    source_label: str = "",
    from_number: PhoneNumber | int | str | None = None,
    template: MessageTemplate | None = None,
    actor=None,
    queue_delivery: bool = True,
) -> BatchResult:
    """Check, store (``pending``) and queue up to ``MAX_BATCH`` outbound messages of ``org`` in one
    transaction; return what became of each recipient (``BatchResult``).

    ``source``: a ``Message.Source`` (``campaign``, ``automation``…); ``source_label``: the campaign's name,
    which the thread shows as the sender. The sender is ``from_number`` for the whole batch (a PhoneNumber,
    id, PN… SID or the number), else per recipient the number of their most recent conversation, else the
    organization's default (no membership: any sendable number of the organization). ``template`` (instead
    of each recipient's body): rendered per recipient for its record (or a record with its number), with
    ``actor`` as the agent; the caller checks it may use the template.

    ``queue_delivery=False`` leaves the hand-over to the caller (``delivery.deliver_many`` on the ids of
    ``queued``, in the same worker); by default one task per batch does it after commit.

    Raises ``ValueError`` for a programming error (no key, a key twice in one batch, too many recipients,
    an unknown source) and ``SendRefused`` when the named ``from_number`` cannot send at all; every other
    refusal is per recipient, in ``BatchResult.refused``.
    """
    if source not in Message.Source.values:
        raise ValueError(f"unknown message source {source!r}")
    if len(recipients) > MAX_BATCH:
        raise ValueError(f"at most {MAX_BATCH} recipients per batch")
    keys = [(r.key or "").strip()[:100] for r in recipients]
    if not all(keys) or len(set(keys)) != len(keys):
        raise ValueError("every recipient needs its own idempotency key")
    try:
        return _send_many(org, recipients, keys, source, source_label, from_number, template, actor,
                          queue_delivery)  # fmt: skip
    except IntegrityError:
        # Another run stored some of these keys at the same moment: this run's transaction rolled back;
        # once more, their messages are found as existing and only the rest is stored.
        return _send_many(org, recipients, keys, source, source_label, from_number, template, actor,
                          queue_delivery)  # fmt: skip


def _send_many(org, recipients, keys, source, source_label, from_number, template, actor, queue_delivery):
    result = BatchResult()
    since = timezone.now() - IDEMPOTENCY_WINDOW
    existing = {
        m.idempotency_key: m
        for m in Message.objects.filter(organization=org, idempotency_key__in=keys, created_at__gte=since)
    }
    planned: list[_Planned] = []
    for recipient, key in zip(recipients, keys, strict=True):
        if key in existing:
            existing[key].replayed = True
            result.existing.append(existing[key])
            continue
        try:
            planned.append(_recipient(org, recipient))
        except SendRefused as refusal:
            result.refused[key] = refusal
    planned = _with_records(org, planned, result)
    refusals = contact_refusals(
        org, [p.e164 for p in planned], keyword_reply=source == Message.Source.AUTO_REPLY
    )
    planned = _refuse(planned, result, lambda p: refusals.get(p.e164), field_name="to")
    planned = _with_senders(org, planned, from_number, result)
    planned = _with_bodies(org, planned, template, actor, result)
    if planned:
        with transaction.atomic():
            result.queued = _store_batch(org, planned, source, source_label[:120], template, actor, since)
        ids = [m.pk for m in result.queued]
        if queue_delivery:
            transaction.on_commit(lambda: queue.enqueue("messaging.tasks.sending.deliver_batch_task", ids))
        transaction.on_commit(lambda: queue.enqueue("messaging.tasks.sending.file_outbound_batch_task", ids))
    return result


def _refuse(planned: list[_Planned], result: BatchResult, why, *, field_name: str) -> list[_Planned]:
    kept = []
    for p in planned:
        reason = why(p)
        if reason:
            result.refused[p.recipient.key] = SendRefused(reason, field=field_name)
        else:
            kept.append(p)
    return kept


def _recipient(org: Organization, recipient: Recipient) -> _Planned:
    given = [v for v in (recipient.to, recipient.record) if v]
    if len(given) != 1:
        raise SendRefused("Say who the message is for: a phone number or a record (exactly one).", field="to")
    if recipient.record is not None:
        record = recipient.record
        if record.organization_id != org.pk:
            raise SendRefused("That record was not found.", field="record")
        answer = texting(record, RecordTypeConfig.cached_for_type(org.pk, record.record_type))
        if not answer.allowed:
            raise SendRefused(answer.reason, field="record")
        return _Planned(recipient, answer.number, record, [])
    try:
        e164 = organization_phone(org.pk, str(recipient.to))
    except InvalidPhoneNumber as exc:
        raise SendRefused(str(exc), field="to") from None
    return _Planned(recipient, e164, None, [])


def _with_records(org: Organization, planned: list[_Planned], result: BatchResult) -> list[_Planned]:
    """The records of each bare number (best first, as ``crm.services.find_records_by_phone`` orders them),
    one query for the index and one per record type. A record whose SMS number it is must allow texting."""
    bare = {p.e164 for p in planned if p.record is None}
    if not bare:
        return planned
    hits: dict[str, dict[int, str]] = {}
    for e164, record_type, record_id in RecordPhone.objects.filter(
        organization=org, e164__in=bare
    ).values_list("e164", "record_type", "record_id"):
        hits.setdefault(record_type, {})[record_id] = e164
    by_number: dict[str, list[CrmRecord]] = {}
    configs = RecordTypeConfig.cached_all_for(org.pk)
    for config in configs:
        ids = hits.get(config.record_type)
        if not ids:
            continue
        for found in (
            model_for(config.record_type).objects.filter(organization=org, pk__in=ids).order_by("-id")
        ):
            by_number.setdefault(ids[found.pk], []).append(found)
    by_type = {c.record_type: c for c in configs}

    def refusal(p: _Planned) -> str | None:
        if p.record is not None:
            return None
        p.matches = by_number.get(p.e164, [])
        for record in p.matches:
            answer = texting(record, by_type[record.record_type])
            if answer.number == p.e164 and not answer.allowed:
                return answer.reason
        return None

    return _refuse(planned, result, refusal, field_name="to")


def _with_senders(org, planned: list[_Planned], from_number, result: BatchResult) -> list[_Planned]:
    if not planned:
        return planned
    if from_number:
        number = _lookup_number(org, from_number)
        check_sender(number, None, with_media=any(p.recipient.media for p in planned))
        for p in planned:
            p.number = number
        return planned
    # Per recipient: the number of their most recent conversation on a sendable number, else the default.
    customers = {p.e164 for p in planned}
    latest: dict[str, tuple] = {}
    sendable = PhoneNumber.objects.filter(
        organization=org, is_active=True, sms_capable=True, account__status="valid"
    )
    threads = Conversation.objects.filter(
        organization=org, customer_number__in=customers, phone_number__in=sendable.values("pk")
    ).values_list("customer_number", "phone_number_id", "last_message_at", "pk")
    for customer, number_id, at, pk in threads:
        rank = (at is not None, at, pk)
        if customer not in latest or rank > latest[customer][0]:
            latest[customer] = (rank, number_id)
    numbers = {
        n.pk: n
        for n in PhoneNumber.objects.select_related("account").filter(
            pk__in={number_id for _rank, number_id in latest.values()}
        )
    }
    default: PhoneNumber | SendRefused | None = None
    for p in planned:
        found = latest.get(p.e164)
        if found is not None:
            p.number = numbers[found[1]]
            continue
        if default is None:
            default = _batch_default(org)
        if isinstance(default, SendRefused):
            result.refused[p.recipient.key] = default
        else:
            p.number = default
    return [p for p in planned if p.number is not None]


def _batch_default(org: Organization) -> PhoneNumber | SendRefused:
    number = chosen_sender(org, None, "")
    if number is not None:
        return number
    from messaging.access import org_default_number

    number = org_default_number(org)
    if number is None:
        return SendRefused(
            "Choose a number to send from: the organization has no default sender number.", field="from"
        )
    try:
        check_sender(number, None, with_media=False)
    except SendRefused as refusal:
        return refusal
    return number


def _with_bodies(org, planned: list[_Planned], template, actor, result: BatchResult) -> list[_Planned]:
    kept = []
    for p in planned:
        try:
            body = p.recipient.body or ""
            if template is not None:
                body = _render_template(org, template, body, p.record, None, p.matches, actor)
            _check_body(body, p.recipient.media)
        except SendRefused as refused:
            result.refused[p.recipient.key] = refused
            continue
        p.body = body
        kept.append(p)
    return kept


def _store_batch(org, planned: list[_Planned], source, source_label, template, actor, since) -> list[Message]:
    keys = [p.recipient.key for p in planned]
    # Keys older than the window may be used again: the old messages let go of them.
    Message.objects.filter(organization=org, idempotency_key__in=keys, created_at__lt=since).update(
        idempotency_key=""
    )
    sender = actor if getattr(actor, "is_authenticated", False) else None
    conversations = _conversations(org, planned, sender)
    messages = []
    for p in planned:
        info = analyze(p.body)
        messages.append(
            Message(
                organization_id=org.pk,
                conversation=conversations[(p.number.pk, p.e164)],
                account_id=p.number.account_id,
                direction=Message.Direction.OUTBOUND,
                source=source,
                status=MessageStatus.PENDING,
                status_rank=0,
                from_number=p.number.phone_number,
                to_number=p.e164,
                body=p.body,
                num_segments=info.segments,
                encoding=info.encoding,
                num_media=len(p.recipient.media),
                sender=sender,
                idempotency_key=p.recipient.key,
                template=template,
                source_label=source_label,
            )
        )
    Message.objects.bulk_create(messages)
    attachments = [
        MessageMedia(
            organization_id=org.pk,
            message=m,
            file=item.file,
            filename=item.filename[:200],
            content_type=item.content_type,
            size=item.size,
        )
        for m, p in zip(messages, planned, strict=True)
        for item in p.recipient.media
    ]
    if attachments:
        MessageMedia.objects.bulk_create(attachments)
    # The conversations' previews and times, as ``record_message`` does for one message.
    touch_conversations(messages)
    # Each message's inbox step, durable from this transaction on (what ``record_message`` writes through
    # ``outbound_message_created`` for one message); ``file_outbound_batch_task`` runs them after commit.
    lease = timezone.now() + timedelta(seconds=steps.LEASE_SECONDS)
    InboxStep.objects.bulk_create(
        [InboxStep(organization_id=org.pk, message_id=m.pk, outbound=True, run_after=lease) for m in messages]
    )
    if template is not None:
        note_template_used(template.pk, count=len(messages))
    audit.record(
        org,
        actor,
        "messages.queued",
        None,
        {
            "source": source,
            "source_label": source_label,
            "from": sorted({m.from_number for m in messages}),
            "messages": [m.pk for m in messages],
        },
        object_type=Message._meta.label_lower,
        object_repr=f"{len(messages)} messages",
    )
    return messages


def _conversations(org, planned: list[_Planned], owner) -> dict[tuple[int, str], Conversation]:
    """The current conversation of each (sender number, customer): read in one query, the missing ones
    created in one INSERT that the partial unique constraint keeps race-free (a conversation another process
    created meanwhile is skipped and read back). A new one belongs to ``owner`` (the agent the batch is sent
    as, as with one send), if any."""
    pairs = {(p.number.pk, p.e164): p for p in planned}

    def read() -> dict[tuple[int, str], Conversation]:
        rows = Conversation.objects.filter(
            organization=org,
            is_current=True,
            phone_number_id__in={n for n, _c in pairs},
            customer_number__in={c for _n, c in pairs},
        )
        return {
            (c.phone_number_id, c.customer_number): c
            for c in rows
            if (c.phone_number_id, c.customer_number) in pairs
        }

    found = read()
    missing = [p for pair, p in pairs.items() if pair not in found]
    if missing:
        Conversation.objects.bulk_create(
            [_new_conversation(org, p, owner) for p in missing], ignore_conflicts=True
        )
        found = read()
    return found


def _new_conversation(org, p: _Planned, owner) -> Conversation:
    best = p.record or (p.matches[0] if p.matches else None)
    return Conversation(
        organization_id=org.pk,
        owner=owner,
        phone_number=p.number,
        customer_number=p.e164,
        record_type=best.record_type if best is not None else "",
        record_id=best.pk if best is not None else None,
        other_matches=[{"record_type": r.record_type, "record_id": r.pk} for r in p.matches if r is not best],
    )
