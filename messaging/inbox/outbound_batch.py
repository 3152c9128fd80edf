"""The inbox's step for a batch of stored outbound messages (a campaign's tick, a bulk send).

``actions.handle_outbound`` files one message in about six statements (its step, the message, its session,
the sender's read state, their notifications, the events' unread counts). A batch stored by
``messaging.services.bulk_sending.send_many`` is filed here in one transaction with a constant number of
statements, by the same rules:

- each message's step is marked done in one UPDATE (a concurrent single try of one of them waits on its row,
  then finds it done; one already done is left out);
- every message joins its session (``inbound_batch.join_sessions``: one read, one INSERT, one UPDATE);
- each sender has read the thread up to their newest message of the batch (one upsert), and their message
  and assignment notifications of those threads clear;
- after commit: ``message.created`` per message (to its thread, its sender and the owner), then one
  ``conversation.updated`` per conversation.

PostgreSQL only; elsewhere ``file_outbound_batch_task`` runs the single step per message.
"""

from __future__ import annotations

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from messaging.inbox import events
from messaging.inbox.inbound_batch import InboundGroup, join_sessions
from messaging.inbox.visibility import inbox_settings_for
from messaging.models import ConversationUserState, InboxStep, Message, Notification


@transaction.atomic
def file_outbound_batch(message_ids) -> int:
    """File the outbound messages ``message_ids`` whose inbox step is not done yet; returns how many."""
    ids = sorted({int(i) for i in message_ids})
    if not ids:
        return 0
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {InboxStep._meta.db_table} SET done_at = %s, failed_at = NULL, last_tried_at = %s "  # noqa: S608
            "WHERE message_id = ANY(%s) AND done_at IS NULL RETURNING message_id",
            [now, now, ids],
        )
        claimed = [row[0] for row in cursor.fetchall()]
    if not claimed:
        return 0
    messages = list(
        Message.objects.select_related(
            "sender", "conversation__phone_number", "conversation__owner", "conversation__team"
        )
        .filter(pk__in=claimed)
        .order_by("pk")
    )
    groups: dict[int, InboundGroup] = {}
    for message in messages:
        if message.conversation_id not in groups:
            groups[message.conversation_id] = InboundGroup(message.conversation, created=False, blocked=False)
        groups[message.conversation_id].messages.append(message)
    settings = {org: inbox_settings_for(org) for org in {m.organization_id for m in messages}}
    join_sessions(list(groups.values()), settings)
    _senders_read(messages, now)
    users: dict[int, set[int]] = {}
    for message in messages:
        told = {u for u in (message.sender_id, groups[message.conversation_id].conversation.owner_id) if u}
        users.setdefault(message.conversation_id, set()).update(told)
        events.publish_message_created(message, user_ids=told)
    events.publish_conversations_updated({pk: (g.conversation, users[pk]) for pk, g in groups.items()})
    return len(claimed)


def _senders_read(messages: list[Message], now) -> None:
    """``actions._mark_read_after_reply`` for every (thread, sender) of the batch: one upsert, one read and
    one UPDATE of their notifications."""
    newest: dict[tuple[int, int], tuple[int, int]] = {}  # (conversation, user) → (message, organization)
    for message in messages:
        if message.sender_id:
            newest[(message.conversation_id, message.sender_id)] = (message.pk, message.organization_id)
    if not newest:
        return
    table = ConversationUserState._meta.db_table
    values = ", ".join(["(%s::bigint, %s::bigint, %s::bigint, %s::bigint)"] * len(newest))
    params = [v for (c, u), (m, org) in newest.items() for v in (org, c, u, m)]
    sql = (
        f"INSERT INTO {table} (organization_id, conversation_id, user_id, unread_count, "  # noqa: S608
        "last_read_message_id, dismissed, last_active_at, updated_at) "
        "SELECT v.org, v.conversation, v.usr, 0, v.message, false, %s, %s "
        f"FROM (VALUES {values}) AS v(org, conversation, usr, message) "
        "ON CONFLICT (conversation_id, user_id) DO UPDATE SET unread_count = 0, "
        "last_read_message_id = excluded.last_read_message_id, last_active_at = excluded.last_active_at, "
        "updated_at = excluded.updated_at"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, now, *params])
    pairs = Q()
    for conversation_id, user_id in newest:
        pairs |= Q(conversation_id=conversation_id, recipient_id=user_id)
    cleared = list(
        Notification.objects.filter(pairs, cleared_at__isnull=True).filter(
            kind__in=[Notification.Kind.MESSAGE, Notification.Kind.ASSIGNED]
        )
    )
    if cleared:
        Notification.objects.filter(pk__in=[n.pk for n in cleared]).update(cleared_at=now, is_read=True)
        events.publish_notifications_cleared(cleared)
