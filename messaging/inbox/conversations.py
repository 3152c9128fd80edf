"""Conversations: the one race-free way to find or start the thread between our number and a customer."""

from __future__ import annotations

from django.db import IntegrityError, connection, transaction

from messaging.models import Conversation, PhoneNumber


def get_or_create_conversation(
    number: PhoneNumber, customer_number: str, **defaults
) -> tuple[Conversation, bool]:
    """The current conversation of (our number, customer number), created if there is none.

    Concurrent first messages from one number race on the partial unique constraint
    ``conversation_one_current_thread``: the loser's insert fails inside a savepoint and it reads the
    winner's row (unique constraint + get on conflict, never one conversation per message).
    """
    lookup = {
        "organization_id": number.organization_id,
        "phone_number": number,
        "customer_number": customer_number,
    }
    existing = Conversation.objects.filter(is_current=True, **lookup).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            return Conversation.objects.create(**lookup, **defaults), True
    except IntegrityError:
        return Conversation.objects.get(is_current=True, **lookup), False


def touch_conversation(conversation: Conversation, message) -> None:
    """Denormalize ``message`` onto its conversation (preview, time, direction, status) and reopen it if it
    was archived. One conditional UPDATE: an older message (history sync, a late webhook) never overwrites a
    newer preview, and still reopens an archived conversation."""
    when = connection.ops.adapt_datetimefield_value(message.created_at)
    preview = (message.body or ("[media]" if message.num_media else ""))[:160]
    newest = "(last_message_at IS NULL OR last_message_at <= %s)"
    # One statement written out: the ORM's Case/When version of it cost more CPU to build than to run.
    sql = (
        f"UPDATE {Conversation._meta.db_table} SET "  # noqa: S608
        f"last_message_at = CASE WHEN {newest} THEN %s ELSE last_message_at END, "
        f"last_message_preview = CASE WHEN {newest} THEN %s ELSE last_message_preview END, "
        f"last_message_direction = CASE WHEN {newest} THEN %s ELSE last_message_direction END, "
        f"last_message_status = CASE WHEN {newest} THEN %s ELSE last_message_status END, "
        "status = %s "
        f"WHERE id = %s AND ({newest} OR status = %s)"
    )
    params = [
        when, when,
        when, preview,
        when, message.direction,
        when, message.status,
        Conversation.Status.OPEN,
        conversation.pk, when, Conversation.Status.ARCHIVED,
    ]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
