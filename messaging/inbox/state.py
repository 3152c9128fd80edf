"""Per-user conversation state (unread count, last read, dismissed, last activity: the idle clock) and message
sessions (windows of the organization's session timeout). Used by the inbox actions (services/inbox.py) and
history sync."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from messaging.inbox.visibility import inbox_settings_for
from messaging.models import (
    Conversation,
    ConversationUserState,
    InboxSettings,
    Message,
    MessageSession,
)


def user_state(conversation: Conversation, user_id: int) -> ConversationUserState:
    state, _ = ConversationUserState.objects.get_or_create(
        conversation=conversation, user_id=user_id, defaults={"organization_id": conversation.organization_id}
    )
    return state


def record_activity(conversation: Conversation, user_id: int, when: datetime | None = None) -> None:
    """Note that ``user_id`` acted on the conversation (read, replied, took it): the idle clock restarts."""
    when = when or timezone.now()
    updated = ConversationUserState.objects.filter(conversation=conversation, user_id=user_id).update(
        last_active_at=when
    )
    if not updated:
        try:
            with transaction.atomic():
                ConversationUserState.objects.create(
                    organization_id=conversation.organization_id,
                    conversation=conversation,
                    user_id=user_id,
                    last_active_at=when,
                )
        except IntegrityError:
            ConversationUserState.objects.filter(conversation=conversation, user_id=user_id).update(
                last_active_at=when
            )


def attach_to_session(
    conversation: Conversation, message: Message, settings: InboxSettings | None = None
) -> MessageSession:
    """The session that covers ``message.created_at``, started there if none does: a window of the
    organization's session timeout, cut short where a later session starts (sync may fill the past)."""
    settings = settings or inbox_settings_for(conversation.organization_id)
    at = message.created_at
    session = (
        MessageSession.objects.filter(conversation=conversation, started_at__lte=at, ends_at__gt=at)
        .order_by("-started_at")
        .first()
    )
    if session is None:
        ends = at + timedelta(minutes=settings.session_timeout_minutes)
        following = (
            MessageSession.objects.filter(conversation=conversation, started_at__gt=at)
            .order_by("started_at")
            .values_list("started_at", flat=True)
            .first()
        )
        if following is not None and following < ends:
            ends = following
        session, _ = MessageSession.objects.get_or_create(
            conversation=conversation,
            started_at=at,
            defaults={
                "organization_id": conversation.organization_id,
                "ends_at": ends,
                "owner": conversation.owner,
            },
        )
    MessageSession.objects.filter(pk=session.pk).update(message_count=F("message_count") + 1)
    if session.owner_id is None and conversation.owner_id is not None:
        MessageSession.objects.filter(pk=session.pk, owner__isnull=True).update(
            owner_id=conversation.owner_id
        )
    return session


def count_in_session(conversation: Conversation, message: Message) -> None:
    """``attach_to_session`` in one statement when a session covers the message already (nearly always: a
    reply in a running conversation): its count grows and it takes the conversation's owner if it had
    none. Otherwise the full ``attach_to_session``."""
    from django.db import connection

    if connection.vendor != "postgresql":
        attach_to_session(conversation, message)
        return
    table = MessageSession._meta.db_table
    sql = (
        f"UPDATE {table} SET message_count = message_count + 1, owner_id = COALESCE(owner_id, %s) "  # noqa: S608
        f"WHERE id = (SELECT id FROM {table} WHERE conversation_id = %s "
        "AND started_at <= %s AND ends_at > %s "
        "ORDER BY started_at DESC LIMIT 1) RETURNING id"
    )
    at = message.created_at
    with connection.cursor() as cursor:
        cursor.execute(sql, [conversation.owner_id, conversation.pk, at, at])
        if cursor.fetchone() is not None:
            return
    attach_to_session(conversation, message)
