"""Conversations: the one race-free way to find or start the thread between our number and a customer."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from messaging.models import Conversation, PhoneNumber


def get_or_create_conversation(
    number: PhoneNumber, customer_number: str, **defaults
) -> tuple[Conversation, bool]:
    """The current conversation of (our number, customer number), created if there is none.

    Concurrent first messages from one number race on the partial unique constraint
    ``conversation_one_current_thread``: the loser's insert fails inside a savepoint and it reads the
    winner's row (GUIDE §4: unique constraint + get on conflict, never one conversation per message).
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
    newer preview, and still reopens an archived conversation (issue 6)."""
    from django.db.models import Case, F, Q, Value, When

    when = message.created_at
    newest = Q(last_message_at__isnull=True) | Q(last_message_at__lte=when)

    def if_newest(value, field: str):
        return Case(When(newest, then=Value(value)), default=F(field))

    archived = Q(status=Conversation.Status.ARCHIVED)
    Conversation.objects.filter(pk=conversation.pk).filter(newest | archived).update(
        last_message_at=if_newest(when, "last_message_at"),
        last_message_preview=if_newest(
            (message.body or ("[media]" if message.num_media else ""))[:160], "last_message_preview"
        ),
        last_message_direction=if_newest(message.direction, "last_message_direction"),
        last_message_status=if_newest(message.status, "last_message_status"),
        status=Case(When(newest | archived, then=Value(Conversation.Status.OPEN)), default=F("status")),
    )
