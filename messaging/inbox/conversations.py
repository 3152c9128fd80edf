"""Conversations: the one race-free way to find or start the thread between our number and a customer, and
the one way to record a message in it (``record_message``)."""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, connection, transaction

from messaging.models import STATUS_RANK, Conversation, Message, MessageStatus, Notification, PhoneNumber
from messaging.signals import inbound_message_stored, outbound_message_created, send_after_commit
from quicksend.bulk import insert_returning


def get_or_create_conversation(
    number: PhoneNumber, customer_number: str, *, absent: bool = False, **defaults
) -> tuple[Conversation, bool]:
    """The current conversation of (our number, customer number), created if there is none.

    Concurrent first messages from one number race on the partial unique constraint
    ``conversation_one_current_thread``: the loser's insert does nothing (PostgreSQL: ``ON CONFLICT DO
    NOTHING``; elsewhere it fails inside a savepoint) and it reads the winner's row (never one conversation
    per message).
    ``absent``: the caller has just read that the number has no conversation with the customer at all, so
    the insert is tried without reading first (a race is still settled by the constraint).
    """
    lookup = {
        "organization_id": number.organization_id,
        "phone_number": number,
        "customer_number": customer_number,
    }
    existing = None if absent else Conversation.objects.filter(is_current=True, **lookup).first()
    if existing is not None:
        return existing, False
    if connection.vendor == "postgresql":
        # One statement instead of a savepoint, the INSERT and its release.
        conversation = Conversation(**lookup, **defaults)
        rows = insert_returning(Conversation, [conversation], "ON CONFLICT DO NOTHING", "id")
        if not rows:
            return Conversation.objects.get(is_current=True, **lookup), False
        conversation.pk = rows[0][0]
        conversation._state.adding, conversation._state.db = False, connection.alias
        return conversation, True
    try:
        with transaction.atomic():
            return Conversation.objects.create(**lookup, **defaults), True
    except IntegrityError:
        return Conversation.objects.get(is_current=True, **lookup), False


def preview_text(body: str, num_media: int) -> str:
    """What a conversation list shows of a message."""
    return (body or ("[media]" if num_media else ""))[:160]


def first_preview(at: datetime, **fields) -> dict:
    """The preview columns of a conversation created with its first message (the message's ``fields`` and
    its ``created_at``, ``at``), so ``record_message`` need not update it right after: pass them to
    ``get_or_create_conversation`` and ``created_at=at`` to ``record_message``."""
    return {
        "last_message_at": at,
        "last_message_preview": preview_text(fields.get("body") or "", fields.get("num_media") or 0),
        "last_message_direction": fields["direction"],
        "last_message_status": fields.get("status", MessageStatus.PENDING),
        "last_message_source": fields["source"],
        "last_message_source_label": fields.get("source_label") or "",
    }


def touch_conversation(conversation: Conversation, message) -> None:
    """Denormalize ``message`` onto its conversation (preview, time, direction, status) and reopen it if it
    was archived. One conditional UPDATE: an older message (history sync, a late webhook) never overwrites a
    newer preview, and still reopens an archived conversation."""
    when = connection.ops.adapt_datetimefield_value(message.created_at)
    preview = preview_text(message.body, message.num_media)
    newest = "(last_message_at IS NULL OR last_message_at <= %s)"
    # One statement written out: the ORM's Case/When version of it cost more CPU to build than to run.
    sql = (
        f"UPDATE {Conversation._meta.db_table} SET "  # noqa: S608
        f"last_message_at = CASE WHEN {newest} THEN %s ELSE last_message_at END, "
        f"last_message_preview = CASE WHEN {newest} THEN %s ELSE last_message_preview END, "
        f"last_message_direction = CASE WHEN {newest} THEN %s ELSE last_message_direction END, "
        f"last_message_status = CASE WHEN {newest} THEN %s ELSE last_message_status END, "
        f"last_message_source = CASE WHEN {newest} THEN %s ELSE last_message_source END, "
        f"last_message_source_label = CASE WHEN {newest} THEN %s ELSE last_message_source_label END, "
        "status = %s "
        f"WHERE id = %s AND ({newest} OR status = %s)"
    )
    params = [
        when, when,
        when, preview,
        when, message.direction,
        when, message.status,
        when, message.source, when, message.source_label or "",
        Conversation.Status.OPEN,
        conversation.pk, when, Conversation.Status.ARCHIVED,
    ]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def touch_conversations(messages) -> dict[int, tuple]:
    """``touch_conversation`` for a batch: each conversation gets the newest of its messages (the messages
    come in the order they were stored), in one statement on PostgreSQL. Returns, for each conversation that
    changed, its new (last_message_at, preview, direction, status, source, source_label, status)."""
    newest: dict[int, object] = {}
    for message in messages:
        newest[message.conversation_id] = message
    if not newest:
        return {}
    if connection.vendor != "postgresql":
        for message in newest.values():
            touch_conversation(message.conversation, message)
        rows = Conversation.objects.filter(pk__in=list(newest)).values_list("pk", *_TOUCHED)
        return {row[0]: row[1:] for row in rows}
    values, params = [], []
    for pk, message in newest.items():
        values.append("(%s::bigint, %s::timestamptz, %s::text, %s::text, %s::text, %s::text, %s::text)")
        preview = preview_text(message.body, message.num_media)
        params += [pk, message.created_at, preview, message.direction, message.status, message.source,
                   message.source_label or ""]  # fmt: skip
    newer = "(c.last_message_at IS NULL OR c.last_message_at <= v.at)"
    columns = ", ".join(
        f"{column} = CASE WHEN {newer} THEN v.{name} ELSE c.{column} END"
        for column, name in zip(
            _TOUCHED[:-1], ("at", "preview", "direction", "status", "source", "label"), strict=True
        )
    )
    sql = (
        f"UPDATE {Conversation._meta.db_table} AS c SET {columns}, status = %s "  # noqa: S608
        f"FROM (VALUES {', '.join(values)}) AS v(id, at, preview, direction, status, source, label) "
        f"WHERE c.id = v.id AND ({newer} OR c.status = %s) "
        f"RETURNING c.id, {', '.join('c.' + column for column in _TOUCHED)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [Conversation.Status.OPEN, *params, Conversation.Status.ARCHIVED])
        return {row[0]: row[1:] for row in cursor.fetchall()}


_TOUCHED = (
    "last_message_at",
    "last_message_preview",
    "last_message_direction",
    "last_message_status",
    "last_message_source",
    "last_message_source_label",
    "status",
)


def record_message(
    conversation: Conversation,
    *,
    new_conversation: bool = False,
    happened_at: datetime | None = None,
    quiet: bool = False,
    blocked: bool = False,
    file_later: bool = False,
    **fields,
) -> Message | None:
    """Store a message in ``conversation``, with everything that follows every stored message: the one way
    sending, receiving, automatic replies, other tools' messages and the history sync record one.

    ``fields`` are the Message's own (direction, source, status, sid, numbers, body, …); the organization
    comes from the conversation and ``status_rank`` from ``status``. Then, in the caller's transaction:

    * ``happened_at``: when the text really happened (Twilio's date for history and other tools), so the
      thread orders by it rather than by when we stored it;
    * the conversation's preview, time and direction, and an archived conversation reopens
      (``touch_conversation``: an older message never overwrites a newer preview);
    * after commit, the inbox is told (``inbound_message_stored`` for an inbound text,
      ``outbound_message_created`` otherwise) and files the message in its session, counts and
      notifications (none for an inbound text from a ``blocked`` number); ``quiet`` (the history sync: old
      news) files it in its session now and tells no one; ``file_later`` (an outbound message whose sender
      has the answer already: the API) has a worker file it shortly after, with the others sent meanwhile.

    A message whose SID is stored already (a webhook retried, the sync and the webhook racing) is refused by
    the unique constraint inside a savepoint: None, and nothing else happens.
    """
    status = fields.get("status", MessageStatus.PENDING)
    fields.setdefault("status_rank", STATUS_RANK.get(status, 0))
    if fields.get("sid"):
        try:
            with transaction.atomic():
                message = Message.objects.create(
                    organization_id=conversation.organization_id, conversation=conversation, **fields
                )
        except IntegrityError:
            return None
    else:
        message = Message.objects.create(
            organization_id=conversation.organization_id, conversation=conversation, **fields
        )
    if happened_at is not None:
        # created_at is auto_now_add: set afterwards.
        Message.objects.filter(pk=message.pk).update(created_at=happened_at)
        message.created_at = happened_at
    # A conversation created with this message carries its preview already (``first_preview``).
    if not (new_conversation and conversation.last_message_at == message.created_at):
        touch_conversation(conversation, message)
    if quiet:
        from messaging.inbox.state import attach_to_session

        attach_to_session(conversation, message)
        return message
    ids = {
        "message_id": message.pk,
        "conversation_id": conversation.pk,
        "organization_id": message.organization_id,
    }
    if message.direction == Message.Direction.INBOUND:
        send_after_commit(
            inbound_message_stored, **ids, created_conversation=new_conversation, blocked=blocked
        )
    else:
        send_after_commit(outbound_message_created, **ids, sender_id=message.sender_id, file_later=file_later)
    return message


def forget_record(organization_id: int, record_type: str, record_id: int) -> int:
    """A CRM record was deleted: its conversations (and their notifications) stop linking to it, so nothing
    leads to a page that is gone. The conversations themselves, with every message, stay."""
    conversations = Conversation.objects.filter(organization_id=organization_id)
    changed = conversations.filter(record_type=record_type, record_id=record_id).update(
        record_type="", record_id=None
    )
    changed += conversations.filter(regarding_type=record_type, regarding_id=record_id).update(
        regarding_type="", regarding_id=None
    )
    Notification.objects.filter(
        organization_id=organization_id, record_type=record_type, record_id=record_id
    ).update(record_type="", record_id=None)
    return changed
