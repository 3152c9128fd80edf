"""Sending: the ONE service every outbound message goes through (agent, API, automation, campaign).

``do_send_message`` checks everything a user can be told about *before* anything is queued (recipient,
consent, sender, body, media), stores the message ``pending`` in its conversation, and queues its hand-over
after commit (``messaging.services.hand_over``: a drain in a worker hands single sends to Twilio in batches;
in place in embedded mode). The worker checks consent again at send time and hands the message to Twilio
(docs/messaging.md "Sending").

Every refusal is a ``SendRefused`` whose message is plain words the UI can show as is.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Sequence
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q, Subquery, Value
from django.utils import timezone

from crm.models import CrmRecord, RecordType, RecordTypeConfig, model_for
from crm.phones import InvalidPhoneNumber
from crm.services import find_records_by_phone
from crm.texting import organization_phone, texting
from messaging.access import (
    may_send_from,
    numbers_usable_by,
    org_default_number,
    sendable_numbers,
)
from messaging.inbox.conversations import first_preview, get_or_create_conversation, record_message
from messaging.media.validation import MediaError, MediaFile, validate_media
from messaging.models import (
    Conversation,
    MemberMessagingSettings,
    Message,
    MessageMedia,
    MessageStatus,
    MessagingSettings,
    PhoneNumber,
    TwilioAccount,
)
from messaging.segments import MAX_BODY_CHARACTERS, analyze, body_too_long
from messaging.services import hand_over
from messaging.services.consent import contact_refusal
from quicksend.errors import DomainError
from quicksend.prepared import Prepared
from templates_app.models import MessageTemplate
from templates_app.services import note_template_used, render_template
from tenancy import audit
from tenancy.models import Membership, Organization, Role

log = logging.getLogger(__name__)

IDEMPOTENCY_WINDOW = timedelta(hours=24)


class SendRefused(DomainError):
    """A message that cannot be sent, with the reason in plain words (``message``) for the person sending.

    ``field`` names the input at fault when there is one ("to", "record", "from", "body", "media", ...), so an
    API can attach the reason to it ("" when no single input is at fault: the answer still has the key).
    """

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message, field=field)


# --- recipient ---------------------------------------------------------------------------------------------


def _check_records_using(org: Organization, e164: str) -> list[CrmRecord]:
    """The records this number belongs to (best first). A record whose SMS number it is must allow texting:
    sending to the bare number must not get round a record's do-not-contact or consent field."""
    records = find_records_by_phone(org, e164)
    for record in records:
        answer = texting(record, RecordTypeConfig.cached_for_type(org.pk, record.record_type))
        if answer.number == e164 and not answer.allowed:
            raise SendRefused(answer.reason, field="to")
    return records


def _resolve_recipient(
    org: Organization, to: str | None, record: CrmRecord | None, conversation: Conversation | None
) -> tuple[str, CrmRecord | None, list[CrmRecord]]:
    """(E.164 number, the record addressed, records matching the number)."""
    given = [
        name for name, value in (("to", to), ("record", record), ("conversation", conversation)) if value
    ]
    if len(given) != 1:
        raise SendRefused(
            "Say who the message is for: a phone number, a record or a conversation (exactly one).",
            field="to",
        )
    if record is not None:
        if record.organization_id != org.pk:
            raise SendRefused("That record was not found.", field="record")
        answer = texting(record, RecordTypeConfig.cached_for_type(org.pk, record.record_type))
        if not answer.allowed:
            raise SendRefused(answer.reason, field="record")
        return answer.number, record, []
    if conversation is not None:
        if conversation.organization_id != org.pk:
            raise SendRefused("That conversation was not found.", field="conversation")
        e164 = conversation.customer_number
        return e164, None, _check_records_using(org, e164)
    try:
        # A number typed without a country code takes the organization's default country, the one inbound
        # matching reads it with too.
        e164 = organization_phone(org.pk, str(to))
    except InvalidPhoneNumber as exc:
        raise SendRefused(str(exc), field="to") from None
    return e164, None, _check_records_using(org, e164)


# --- sender ------------------------------------------------------------------------------------------------


def _lookup_number(org: Organization, ref) -> PhoneNumber:
    """A number of the organization given as a PhoneNumber, our id, its SID (PN…) or the number itself."""
    queryset = PhoneNumber.objects.select_related("account").filter(organization=org)
    if isinstance(ref, PhoneNumber):
        found = queryset.filter(pk=ref.pk).first()
    else:
        text = str(ref).strip()
        if text.startswith("PN"):
            found = queryset.filter(sid=text).first()
        elif text.isdigit() and len(text) < 9:  # our id (short codes are 5–6 digits but never ids this small)
            found = queryset.filter(pk=int(text)).first() or queryset.filter(phone_number=text).first()
        else:
            found = queryset.filter(phone_number=text).first()
            if found is None:
                try:
                    found = queryset.filter(phone_number=organization_phone(org.pk, text)).first()
                except InvalidPhoneNumber:
                    found = None
    if found is None:
        raise SendRefused("That sender number is not one of this organization's numbers.", field="from")
    return found


def current_thread_number(
    org: Organization, membership: Membership | None, customer_number: str
) -> PhoneNumber | None:
    """The number of the customer's most recent conversation in the organization that the sender may use
    (any sendable number without a membership), or None. One query (with the number's account).

    A reply must come from the number the person texted: a default sender changed since then would reach
    them from a number they never texted and open a second thread.
    """
    usable = numbers_usable_by(membership) if membership is not None else sendable_numbers(org)
    latest = (
        Conversation.objects.filter(
            organization=org, customer_number=customer_number, phone_number__in=usable.values("pk")
        )
        .order_by(F("last_message_at").desc(nulls_last=True), "-pk")
        .values("phone_number_id")[:1]
    )
    return PhoneNumber.objects.select_related("account").filter(pk=Subquery(latest)).first()


def chosen_sender(
    org: Organization, membership: Membership | None, customer_number: str
) -> PhoneNumber | None:
    """The number a message to ``customer_number`` comes from when the sender names none, among the numbers
    the sender may use (any sendable number without a membership): the number of the customer's most recent
    conversation (``current_thread_number``), else the member's own default, else the organization's
    default; None when none of them is usable (the caller then explains why). One query, with the
    number's account: the two defaults and the threads are read inside it, so a change applies at once.
    The number carries ``has_thread``: whether it has any conversation with the customer.
    """
    if membership is None:
        return _CHOSEN_SENDER.first(None, org_id=org.pk, customer_number=customer_number)
    return _CHOSEN_SENDER.first(
        (membership.is_active, membership.is_admin),
        org_id=org.pk,
        customer_number=customer_number,
        membership_id=membership.pk,
    )


def _chosen_sender_query(shape, *, org_id: int, customer_number: str, membership_id: int | None = None):
    """``chosen_sender``'s query; ``shape``: None (no membership), else the member's (is_active, is_admin)."""
    org = Organization(pk=org_id)
    membership = None
    if shape is not None:
        is_active, is_admin = shape
        role = Role.ADMIN if is_admin else Role.AGENT
        membership = Membership(pk=membership_id, organization=org, is_active=is_active, role=role)
    usable = numbers_usable_by(membership) if membership is not None else sendable_numbers(org)
    threads = Conversation.objects.filter(
        organization=org, customer_number=customer_number, phone_number=OuterRef("pk")
    )
    org_default = MessagingSettings.objects.filter(organization=org, default_number=OuterRef("pk"))
    annotations = {
        "has_thread": Exists(threads),
        "thread_at": Subquery(
            threads.order_by(F("last_message_at").desc(nulls_last=True)).values("last_message_at")[:1]
        ),
        "thread_id": Subquery(threads.order_by("-pk").values("pk")[:1]),
        "is_org_default": Exists(org_default),
        "is_own_default": Value(False),
    }
    wanted = Q(has_thread=True) | Q(is_org_default=True)
    if membership is not None:
        annotations["is_own_default"] = Exists(
            MemberMessagingSettings.objects.filter(membership=membership, default_number=OuterRef("pk"))
        )
        wanted |= Q(is_own_default=True)
    return (
        usable.annotate(**annotations)
        .filter(wanted)
        .select_related("account")
        .order_by(
            F("has_thread").desc(),
            F("thread_at").desc(nulls_last=True),
            F("thread_id").desc(nulls_last=True),
            F("is_own_default").desc(),
            F("is_org_default").desc(),
        )[:1]
    )


# Built and compiled once per process: building and compiling it cost about ten times the CPU of running
# it (docs/benchmarks.md "Send cost"). The stand-ins are values no row has.
_CHOSEN_SENDER = Prepared(
    _chosen_sender_query, org_id=-7_000_001, customer_number="+0 customer", membership_id=-7_000_002
)


def _resolve_sender(
    org: Organization,
    membership: Membership | None,
    from_number,
    conversation: Conversation | None,
    customer_number: str,
    with_media: bool,
) -> PhoneNumber:
    """Explicit → the conversation's number → the number of the customer's current thread → the member's
    default → the organization's default (docs/messaging.md "Which number a message comes from")."""
    checked = False
    if from_number:
        number = _lookup_number(org, from_number)
    elif conversation is not None:
        number = PhoneNumber.objects.select_related("account").get(pk=conversation.phone_number_id)
    elif (chosen := chosen_sender(org, membership, customer_number)) is not None:
        number = chosen
        checked = True  # only numbers the sender may use were looked at
    else:
        number = org_default_number(org)
        if number is None:
            raise SendRefused(
                "Choose a number to send from: you have no default sender number and neither has the "
                "organization.",
                field="from",
            )
    check_sender(number, membership, with_media, checked=checked)
    return number


def check_sender(
    number: PhoneNumber, membership: Membership | None, with_media: bool, *, checked: bool = False
) -> None:
    """Refuse a sender number that cannot send this message now (inactive, not SMS/MMS-capable, its account
    not verified) or that ``membership`` may not use (``checked``: already known to be usable)."""
    label = number.display_name
    if not number.is_active:
        raise SendRefused(f"{label} is no longer active in the Twilio account.", field="from")
    if not number.sms_capable:
        raise SendRefused(f"{label} cannot send text messages.", field="from")
    if with_media and not number.mms_capable:
        raise SendRefused(
            f"{label} cannot send pictures or files (it is not MMS-capable); remove the attachments or "
            "choose another number.",
            field="from",
        )
    if number.account.status != TwilioAccount.Status.VALID:
        raise SendRefused(
            f"The Twilio account of {label} needs its credentials checked by an admin before it can send.",
            field="from",
        )
    if membership is not None and not checked and not may_send_from(membership, number):
        raise SendRefused(f"You are not allowed to send from {label}.", field="from")


# --- body and media ----------------------------------------------------------------------------------------


def _check_body(body: str, media: Sequence[MediaFile]) -> None:
    if len(body) > MAX_BODY_CHARACTERS:
        raise SendRefused(body_too_long(len(body)), field="body")
    if not body.strip() and not media:
        raise SendRefused("The message is empty: write something or attach a file.", field="body")


def _render_template(
    org: Organization,
    template: MessageTemplate,
    body: str,
    record: CrmRecord | None,
    conversation: Conversation | None,
    matches: list[CrmRecord],
    actor,
) -> str:
    """The template's text for the best record this message is about (one of the template's type)."""
    if template.organization_id != org.pk:
        raise SendRefused("That template was not found.", field="template")
    if body.strip():
        raise SendRefused("Give a body or a template, not both.", field="body")
    if not template.is_published:
        raise SendRefused(f"“{template.name}” is a draft: publish it before sending it.", field="template")
    candidates = [record] if record is not None else []
    if conversation is not None and conversation.record_id and conversation.record_type in RecordType.values:
        model = model_for(conversation.record_type)
        candidates += list(model.objects.filter(organization=org, pk=conversation.record_id))
    candidates += matches
    chosen = next(
        (r for r in candidates if not template.record_type or r.record_type == template.record_type),
        record,  # a record of another type: refused below, naming the template's type
    )
    try:
        result = render_template(template, chosen, sender=actor)
    except ValidationError as exc:
        raise SendRefused(" ".join(exc.messages), field="template") from None
    return result.text


def safe_media_name(name: str, content_type: str) -> str:
    # Stored names are ours (never the uploader's path): random, with the extension of the sniffed type so
    # the public URL ends like the content (Twilio and handsets look at it).
    import mimetypes

    ext = mimetypes.guess_extension(content_type) or os.path.splitext(name)[1][:8] or ".bin"
    return f"{secrets.token_hex(8)}{ext}"


# --- the service -------------------------------------------------------------------------------------------


def _existing_for_key(org: Organization, key: str) -> Message | None:
    return Message.objects.filter(
        organization=org, idempotency_key=key, created_at__gte=timezone.now() - IDEMPOTENCY_WINDOW
    ).first()


def do_send_message(
    org: Organization,
    *,
    actor=None,
    membership: Membership | None = None,
    source: str,
    to: str | None = None,
    record: CrmRecord | None = None,
    conversation: Conversation | None = None,
    from_number: PhoneNumber | int | str | None = None,
    body: str = "",
    media: Sequence[MediaFile] = (),
    idempotency_key: str = "",
    template: MessageTemplate | None = None,
    source_label: str = "",
    agent=None,
    file_in_worker: bool = False,
) -> Message:
    """Check, store (``pending``) and queue one outbound message; return it.

    The recipient is exactly one of ``to`` (any format; the contact type's default country applies),
    ``record`` (its SMS number; do-not-contact and the compliance field are honoured) or ``conversation``
    (its customer). The sender is ``from_number`` (a PhoneNumber, id, PN… SID or the number), else the
    conversation's number, else the number of the customer's most recent conversation that the sender may
    use (a reply comes from the number the person texted), else ``membership``'s default, else the
    organization's default; with a ``membership`` the member must be allowed to use it
    (``messaging.access.may_send_from``). Automations and campaigns pass no membership.

    ``source_label``: the automation's or campaign's name, which the thread shows as the sender.
    ``agent``: whom ``{{agent.*}}`` names when nobody sends by hand (automations: the owner); else ``actor``.

    ``idempotency_key``: the same key within 24 hours returns the first message instead of sending again.

    ``file_in_worker``: the inbox files the message (session, the sender's read state, live events) from a
    worker shortly after commit, not in this process (``record_message``'s ``file_later``): for a caller
    whose answer already tells the sender (the REST API).

    ``template`` (instead of ``body``): its body rendered for the record (``record``, else the conversation's
    record, else a record with the number), ``actor`` as the agent; the message remembers the template and
    the template counts the use. The caller checks the template is one the sender may see.

    A message returned for an idempotency key it already had carries ``replayed = True`` (nothing was
    stored or queued this time).

    Raises SendRefused (plain words) for anything that stops the send. Twilio is called by a worker after
    commit, never here.
    """
    key = (idempotency_key or "").strip()[:100]
    if key:
        existing = _existing_for_key(org, key)
        if existing is not None:
            existing.replayed = True
            return existing
    if source not in Message.Source.values:
        raise ValueError(f"unknown message source {source!r}")
    body = body or ""
    media = list(media or ())
    e164, record, matches = _resolve_recipient(org, to, record, conversation)
    if not e164:
        raise SendRefused("There is no number to text.", field="to")
    refusal = contact_refusal(org, e164, keyword_reply=source == Message.Source.AUTO_REPLY)
    if refusal:
        raise SendRefused(refusal, field="to")
    number = _resolve_sender(org, membership, from_number, conversation, e164, bool(media))
    if template is not None:
        body = _render_template(org, template, body, record, conversation, matches, agent or actor)
    _check_body(body, media)
    try:
        validated = validate_media(media) if media else []
    except MediaError as exc:
        raise SendRefused(" ".join(exc.messages), field="media") from None
    info = analyze(body)
    stored = (number, e164, record, matches, body, info, media, validated, key, template, source_label[:120])
    return _store_or_replay(org, actor, source, key, stored, file_in_worker)


def _store_or_replay(
    org: Organization, actor, source: str, key: str, stored: tuple, file_later: bool = False
) -> Message:
    try:
        with transaction.atomic():
            return _store(org, actor, source, *stored, file_later=file_later)
    except IntegrityError:
        # Two requests with one idempotency key raced: the loser returns the winner's message.
        if key:
            existing = Message.objects.filter(organization=org, idempotency_key=key).first()
            if existing is not None:
                existing.replayed = True
                return existing
        raise


def _save_media(org: Organization, message: Message, media, validated) -> None:
    items = []
    for file, checked in zip(media, validated, strict=True):
        item = MessageMedia(
            organization=org,
            message=message,
            filename=(file.name or "")[:200],
            content_type=checked.content_type,
            size=checked.size,
        )
        item.file.save(
            safe_media_name(file.name or "", checked.content_type), ContentFile(file.data), save=False
        )
        item.save()
        items.append(item)
    _remember_media(message, items)


def _remember_media(message: Message, items: list[MessageMedia]) -> None:
    # The caller serializes the new message with its media: hand it the rows just written (what
    # prefetch_related would have stored) instead of reading them back.
    rows = MessageMedia.objects.filter(message=message)
    rows._result_cache = items
    rows._prefetch_done = True
    message._prefetched_objects_cache = {"media": rows}


def _store(
    org,
    actor,
    source,
    number,
    e164,
    record,
    matches,
    body,
    info,
    media,
    validated,
    key,
    template=None,
    source_label="",
    file_later=False,
) -> Message:
    if key:
        # A key older than the window may be used again: the old message lets go of it.
        Message.objects.filter(
            organization=org, idempotency_key=key, created_at__lt=timezone.now() - IDEMPOTENCY_WINDOW
        ).update(idempotency_key="")
    best = record or (matches[0] if matches else None)
    sender = actor if getattr(actor, "is_authenticated", False) else None
    defaults = {
        "owner": sender,
        "record_type": best.record_type if best is not None else "",
        "record_id": best.pk if best is not None else None,
        "other_matches": [
            {"record_type": r.record_type, "record_id": r.pk} for r in matches if r is not best
        ],
    }
    fields = {
        "account": number.account,
        "direction": Message.Direction.OUTBOUND,
        "source": source,
        "status": MessageStatus.PENDING,
        "from_number": number.phone_number,
        "to_number": e164,
        "body": body,
        "num_segments": info.segments,
        "encoding": info.encoding,
        "num_media": len(validated),
        "sender": sender,
        "idempotency_key": key,
        "template": template,
        "source_label": source_label,
    }
    now = timezone.now()
    # A new conversation is written with this message as its preview; the sender choice has just read
    # whether the number has any conversation with the customer (``chosen_sender``: ``has_thread``).
    conversation, created = get_or_create_conversation(
        number,
        e164,
        absent=getattr(number, "has_thread", None) is False,
        **defaults,
        **first_preview(now, **fields),
    )
    message = record_message(
        conversation, new_conversation=created, created_at=now, file_later=file_later, **fields
    )
    if template is not None:
        note_template_used(template.pk)
    _save_media(org, message, media, validated)
    audit.record(
        org,
        actor,
        "message.queued",
        message,
        {"to": e164, "from": number.phone_number, "source": source, "media": len(validated)},
    )
    message_id = message.pk
    transaction.on_commit(lambda: hand_over.queue_hand_over(message_id))
    return message
