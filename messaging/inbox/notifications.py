"""Who is notified of what in the inbox, and the notifications themselves (one open notification per
recipient and conversation). Who is notified of an inbound text:

- no owner yet: a *request* (Accept / Dismiss / Block) to every member who may see the conversation (the
  team's members when a team owns it);
- an owner active within the idle timeout: the owner only;
- an owner idle longer than that: the owner, plus the team (or everyone who may see it) with "Assign to me";
- a blocked number: nobody (the text is stored, the thread's open viewers still see it arrive);
- an opt-out keyword: the owner of an existing conversation only, never a request (see
  ``actions._handle_inbound``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from messaging.inbox import events
from messaging.inbox.visibility import members_who_may_see
from messaging.models import (
    Conversation,
    ConversationUserState,
    InboxSettings,
    Message,
    Notification,
)
from tenancy.models import Membership, Role


def record_link(conversation: Conversation) -> tuple[str, int | None]:
    if conversation.regarding_type and conversation.regarding_id:
        return conversation.regarding_type, conversation.regarding_id
    return conversation.record_type, conversation.record_id


def notify(
    conversation: Conversation, recipient_ids: Iterable[int], kind: str, message: Message | None
) -> list:
    """Create or refresh the one open notification per recipient for this conversation."""
    record_type, record_id = record_link(conversation)
    touched = []
    for user_id in recipient_ids:
        existing = Notification.objects.filter(
            recipient_id=user_id, conversation=conversation, cleared_at__isnull=True
        ).first()
        if existing is not None:
            existing.kind = kind
            existing.message = message
            existing.count = existing.count + (1 if message is not None else 0)
            existing.is_read = False
            existing.record_type, existing.record_id = record_type, record_id
            existing.save(
                update_fields=[
                    "kind",
                    "message",
                    "count",
                    "is_read",
                    "record_type",
                    "record_id",
                    "updated_at",
                ]
            )
            existing.conversation = conversation
            touched.append(existing)
        else:
            created = Notification.objects.create(
                organization_id=conversation.organization_id,
                recipient_id=user_id,
                kind=kind,
                conversation=conversation,
                message=message,
                record_type=record_type,
                record_id=record_id,
            )
            created.conversation = conversation
            touched.append(created)
    return touched


def clear_notifications(
    conversation: Conversation, *, user_ids: Iterable[int] | None = None, kinds=None
) -> None:
    qs = Notification.objects.filter(conversation=conversation, cleared_at__isnull=True)
    if user_ids is not None:
        qs = qs.filter(recipient_id__in=list(user_ids))
    if kinds is not None:
        qs = qs.filter(kind__in=kinds)
    cleared = list(qs)
    if not cleared:
        return
    Notification.objects.filter(pk__in=[n.pk for n in cleared]).update(
        cleared_at=timezone.now(), is_read=True
    )
    events.publish_notifications_cleared(cleared)


def clear_notifications_of(pairs: list[tuple[int, int]], *, kinds, now: datetime) -> None:
    """``clear_notifications`` for many threads at once: the open notifications of ``kinds`` for each
    (conversation, user) of ``pairs`` clear in one ``UPDATE … RETURNING`` (what the live event needs: each
    one's id, recipient, organization and thread), then their recipients hear of it. PostgreSQL only (the
    batch filing's path)."""
    if not pairs:
        return
    values = ", ".join(["(%s::bigint, %s::bigint)"] * len(pairs))
    kind_slots = ", ".join(["%s"] * len(kinds))
    sql = (
        f"UPDATE {Notification._meta.db_table} SET cleared_at = %s, is_read = true, updated_at = %s "  # noqa: S608
        f"WHERE cleared_at IS NULL AND kind IN ({kind_slots}) "
        f"AND (conversation_id, recipient_id) IN (VALUES {values}) "
        "RETURNING id, recipient_id, organization_id, conversation_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, now, *kinds, *(v for pair in pairs for v in pair)])
        cleared = [
            Notification(pk=pk, recipient_id=user, organization_id=org, conversation_id=conversation)
            for pk, user, org, conversation in sorted(cursor.fetchall())
        ]
    if cleared:
        events.publish_notifications_cleared(cleared)


def owner_is_active(conversation: Conversation, settings: InboxSettings, now: datetime) -> bool:
    last = (
        ConversationUserState.objects.filter(conversation=conversation, user_id=conversation.owner_id)
        .values_list("last_active_at", flat=True)
        .first()
    )
    return last is not None and last >= now - timedelta(minutes=settings.idle_timeout_minutes)


def team_member_ids(team_id: int) -> set[int]:
    return set(Membership.objects.filter(teams__pk=team_id, is_active=True).values_list("user_id", flat=True))


def inbound_recipients(
    conversation: Conversation, settings: InboxSettings, now: datetime, *, first_text: bool = False
) -> dict[int, str]:
    """user id → notification kind for a new inbound text (the rules in the module docstring). The first text
    of a new conversation is a request even if the pipeline gave it an owner (e.g. the matched record's)."""
    may_see = {m.user_id for m in members_who_may_see(conversation, settings)}
    if conversation.team_id is not None:
        team = team_member_ids(conversation.team_id) & may_see
    else:
        team = may_see
    if conversation.owner_id is None or first_text:
        return {uid: Notification.Kind.REQUEST for uid in team | ({conversation.owner_id} - {None})}
    if owner_is_active(conversation, settings, now):
        return {conversation.owner_id: Notification.Kind.MESSAGE}
    recipients = {uid: Notification.Kind.IDLE for uid in team if uid != conversation.owner_id}
    recipients[conversation.owner_id] = Notification.Kind.MESSAGE
    return recipients


def open_notification_users(conversation: Conversation) -> list[int]:
    return list(
        Notification.objects.filter(conversation=conversation, cleared_at__isnull=True).values_list(
            "recipient_id", flat=True
        )
    )


@transaction.atomic
def do_mark_notifications_read(user, notification_ids: Iterable[int]) -> int:
    """Mark the user's own notifications read (they stay listed until cleared by the action they ask for)."""
    ids = list(notification_ids)
    return Notification.objects.filter(recipient=user, pk__in=ids, is_read=False).update(is_read=True)


@transaction.atomic
def notify_account_invalid(organization_id: int, account_id: int, message: str) -> list[Notification]:
    """Tell the organization's active admins in the app that Twilio refused an account's credentials: one
    open notification per admin and account (a repeat refreshes it), pushed live to each of them."""
    admin_ids = Membership.objects.filter(
        organization_id=organization_id, role=Role.ADMIN, is_active=True
    ).values_list("user_id", flat=True)
    touched = []
    for user_id in admin_ids:
        notification, created = Notification.objects.get_or_create(
            recipient_id=user_id,
            kind=Notification.Kind.ACCOUNT,
            account_id=account_id,
            cleared_at__isnull=True,
            defaults={"organization_id": organization_id, "text": message[:300]},
        )
        if not created:
            notification.count += 1
            notification.is_read = False
            notification.text = message[:300]
            notification.save(update_fields=["count", "is_read", "text", "updated_at"])
        touched.append(notification)
    for notification in touched:
        transaction.on_commit(lambda n=notification: events.publish_notification_created(n))
    return touched
