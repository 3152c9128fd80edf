"""Live events of the inbox: the one module that publishes messaging events.

Every event is a typed JSON frame ``{"type": ..., ...payload}`` that carries enough to render without a
fetch. Recipients are explicit: ``user.<id>`` groups (a user's own notifications, unread counts, their
conversations' updates) and ``conv.<id>`` groups (everyone looking at a conversation, joined after the
visibility check). ``quicksend.realtime.publish`` sends after the transaction commits. A socket shows each
event once, however many of its groups it reached it through (copies share an event id). After a reconnect
a client refetches the REST snapshot (``GET /api/v1/conversations``, ``.../messages``, ``/notifications``):
events missed while disconnected are not replayed.

Event types and payloads:

- ``message.created``: ``{"conversation_id", "message": MESSAGE}`` (MESSAGE is the REST thread item,
  ``GET /api/v1/conversations/{id}/messages``, key for key)
- ``message.status``: ``{"conversation_id", "message_id", "status", "error_code", "error_message"}``
- ``conversation.updated``: ``{"conversation": CONVERSATION, "unread": int | null}`` (``unread`` is the
  recipient's own count on ``user.<id>``, null on ``conv.<id>``)
- ``notification.created``: ``{"notification": NOTIFICATION, "unread_total": int}``
- ``notification.cleared``: ``{"notification_ids": [...], "conversation_id", "unread_total": int}``
- ``consent.changed``: ``{"phone_number", "opted_out", "blocked", "do_not_contact"}`` to the conversations
  with that number (a STOP, START, or an agent's mark: composers showing them ask again whether they may
  text)
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.db.models import Q, Sum

from messaging.inbox.message_shape import (
    MEDIA_FIELDS,
    consent_revocation,
    media_by_message,
    media_item,
    sender_name,
)
from messaging.models import ConsentState, Conversation, ConversationUserState, Message, Notification
from quicksend.realtime import (
    conversation_group,
    listened,
    new_event_id,
    publish,
    publish_access_changed,
    user_group,
)
from tenancy.models import Membership

MESSAGE_CREATED = "message.created"
MESSAGE_STATUS = "message.status"
CONVERSATION_UPDATED = "conversation.updated"
NOTIFICATION_CREATED = "notification.created"
NOTIFICATION_CLEARED = "notification.cleared"
CONSENT_CHANGED = "consent.changed"


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def _iso_z(value) -> str | None:
    # The REST API's date-time format (DRF writes UTC as "…Z"), so an event and a REST item are equal.
    from rest_framework.fields import DateTimeField

    return DateTimeField().to_representation(value) if value is not None else None


def _user_brief(user) -> dict | None:
    if user is None:
        return None
    name = user.get_full_name() if hasattr(user, "get_full_name") else ""
    return {"id": user.pk, "name": name or user.get_username()}


def message_payload(message: Message) -> dict:
    """The thread item of the REST API (``inbox.api.serializers.MessageSerializer``), key for key."""
    sender = message.sender if message.sender_id else None
    if message.num_media == 0:
        media = []
    elif "media" in getattr(message, "_prefetched_objects_cache", {}):
        # The send service hands over the rows it just wrote (no query).
        media = [
            media_item({f: getattr(m, f) for f in MEDIA_FIELDS if f != "file"} | {"file": m.file.name})
            for m in message.media.all()
        ]
    else:
        media = media_by_message([message.pk]).get(message.pk, [])
    return {
        "id": message.pk,
        "conversation": message.conversation_id,
        "direction": message.direction,
        "source": message.source,
        "status": message.status,
        "from_number": message.from_number,
        "to_number": message.to_number,
        "body": message.body,
        "num_media": message.num_media,
        "num_segments": message.num_segments,
        "error_code": message.error_code,
        "error_message": message.error_message,
        "sender": message.sender_id,
        "source_label": message.source_label,
        "created_at": _iso_z(message.created_at),
        "sender_name": sender_name(sender.first_name, sender.last_name, sender.get_username())
        if sender
        else "",
        "media": media,
        "consent_revocation": consent_revocation(message.direction, message.body),
    }


def conversation_payload(conversation: Conversation) -> dict:
    """The conversation as the list shows it (same keys as the API's list item, without ``unread``)."""
    number = conversation.phone_number
    return {
        "id": conversation.pk,
        "phone_number": {"id": number.pk, "phone_number": number.phone_number, "label": number.label},
        "customer_number": conversation.customer_number,
        "status": conversation.status,
        "is_current": conversation.is_current,
        "owner": _user_brief(conversation.owner),
        "team": {"id": conversation.team.pk, "name": conversation.team.name} if conversation.team else None,
        "record_type": conversation.record_type,
        "record_id": conversation.record_id,
        "regarding_type": conversation.regarding_type,
        "regarding_id": conversation.regarding_id,
        "last_message": {
            "at": _iso(conversation.last_message_at),
            "preview": conversation.last_message_preview,
            "direction": conversation.last_message_direction,
            "status": conversation.last_message_status,
            "source": conversation.last_message_source,
            "source_label": conversation.last_message_source_label,
        },
    }


def notification_link(record_type: str, record_id: int | None, conversation_id: int) -> str:
    """The record's page when a record matched, else the conversation in the inbox."""
    if record_type and record_id:
        from django.urls import NoReverseMatch, reverse

        try:
            return reverse(f"crm-{record_type}-detail", args=[record_id])
        except NoReverseMatch:
            pass
    return f"/inbox/conversations/{conversation_id}"


def notification_payload(notification: Notification) -> dict:
    conversation = notification.conversation
    if conversation is None and notification.kind == Notification.Kind.AUTOMATION:
        # An automation's note: its text, linking to the record it is about (else the inbox).
        from django.urls import reverse

        customer_number, preview = "", notification.text
        has_record = notification.record_type and notification.record_id
        link = (
            notification_link(notification.record_type, notification.record_id, 0)
            if has_record
            else reverse("inbox")
        )
    elif conversation is None:  # about a Twilio account: its settings page, in Twilio's words
        from django.urls import reverse

        customer_number, preview, link = "", notification.text, reverse("settings-twilio")
    else:
        customer_number, preview = conversation.customer_number, conversation.last_message_preview
        link = notification_link(
            notification.record_type, notification.record_id, notification.conversation_id
        )
    return {
        "id": notification.pk,
        "kind": notification.kind,
        "conversation_id": notification.conversation_id,
        "customer_number": customer_number,
        "preview": preview,
        "count": notification.count,
        "record_type": notification.record_type,
        "record_id": notification.record_id,
        "link": link,
        "actions": NOTIFICATION_ACTIONS[notification.kind],
        "is_read": notification.is_read,
        "created_at": _iso(notification.created_at),
        "updated_at": _iso(notification.updated_at),
    }


NOTIFICATION_ACTIONS = {
    Notification.Kind.REQUEST: ["accept", "dismiss", "block"],
    Notification.Kind.MESSAGE: ["view"],
    Notification.Kind.IDLE: ["view", "assign"],
    Notification.Kind.ASSIGNED: ["view"],
    Notification.Kind.ACCOUNT: ["view"],
    Notification.Kind.AUTOMATION: ["view"],
}


def unread_total(user_id: int, org_id: int) -> int:
    return (
        ConversationUserState.objects.filter(
            user_id=user_id, organization_id=org_id, unread_count__gt=0
        ).aggregate(n=Sum("unread_count"))["n"]
        or 0
    )


def unread_totals(user_ids: Iterable[int], org_id: int) -> dict[int, int]:
    """``unread_total`` of several users of one organization in one query (absent: 0)."""
    user_ids = set(user_ids)
    if not user_ids:
        return {}
    rows = (
        ConversationUserState.objects.filter(user_id__in=user_ids, organization_id=org_id, unread_count__gt=0)
        .values("user_id")
        .annotate(n=Sum("unread_count"))
        .values_list("user_id", "n")
    )
    return dict(rows)


# --- publishers ------------------------------------------------------------------------------------------


def publish_message_created(
    message: Message, user_ids: Iterable[int] = (), *, to_conversation: bool = True
) -> None:
    """The thread's viewers and ``user_ids`` hear of a new message. Every copy is named by the message, so a
    socket that watches the thread *and* is one of the users (or hears it again from a retried step) shows
    it once."""
    payload = {"conversation_id": message.conversation_id, "message": message_payload(message)}
    conversation_ids = [message.conversation_id] if to_conversation else []
    publish(
        MESSAGE_CREATED,
        payload,
        user_ids=user_ids,
        conversation_ids=conversation_ids,
        event_id=f"{MESSAGE_CREATED}.{message.pk}",
    )


def publish_message_status(message: Message, user_ids: Iterable[int] = ()) -> None:
    payload = {
        "conversation_id": message.conversation_id,
        "message_id": message.pk,
        "status": message.status,
        "error_code": message.error_code,
        "error_message": message.error_message,
    }
    # Statuses only move forward, so (message, status) names one event.
    publish(
        MESSAGE_STATUS,
        payload,
        user_ids=user_ids,
        conversation_ids=[message.conversation_id],
        event_id=f"{MESSAGE_STATUS}.{message.pk}.{message.status}",
    )


def publish_conversation_updated(
    conversation: Conversation, user_ids: Iterable[int] = (), *, current: bool = False
) -> None:
    """To the conversation group (``unread`` null) and to each user with their own unread count.

    The conversation is read again with its number, owner and team, unless the caller says its instance is
    ``current`` (read in this transaction under its row lock, with those relations, and unchanged since)."""
    if not current:
        conversation = Conversation.objects.select_related("phone_number", "owner", "team").get(
            pk=conversation.pk
        )
    body = conversation_payload(conversation)
    # One event in several copies: each user's (with their own count) go first, so a socket that is one of
    # the users and also watches the thread shows that copy and drops the thread's.
    event_id = new_event_id()
    user_ids = set(user_ids)
    if user_ids:
        # Each user's count in this conversation and their total (the bell) in one query.
        rows = list(
            ConversationUserState.objects.filter(
                user_id__in=user_ids, organization_id=conversation.organization_id
            )
            .filter(Q(unread_count__gt=0) | Q(conversation_id=conversation.pk))
            .values("user_id")
            .annotate(
                here=Sum("unread_count", filter=Q(conversation_id=conversation.pk)),
                total=Sum("unread_count", filter=Q(unread_count__gt=0)),
            )
            .values_list("user_id", "here", "total")
        )
        counts = {user_id: here or 0 for user_id, here, _total in rows}
        totals = {user_id: total or 0 for user_id, _here, total in rows}
        for user_id in user_ids:
            publish(
                CONVERSATION_UPDATED,
                {
                    "conversation": body,
                    "unread": counts.get(user_id, 0),
                    "unread_total": totals.get(user_id, 0),
                },
                user_ids=[user_id],
                event_id=event_id,
            )
    publish(
        CONVERSATION_UPDATED,
        {"conversation": body, "unread": None},
        conversation_ids=[conversation.pk],
        event_id=event_id,
    )


def publish_notification_created(notification: Notification) -> None:
    payload = {
        "notification": notification_payload(notification),
        "unread_total": unread_total(notification.recipient_id, notification.organization_id),
    }
    publish(NOTIFICATION_CREATED, payload, user_ids=[notification.recipient_id])


def publish_notifications_cleared(notifications: Iterable[Notification]) -> None:
    by_user: dict[tuple[int, int, int], list[int]] = {}
    for n in notifications:
        by_user.setdefault((n.recipient_id, n.organization_id, n.conversation_id), []).append(n.pk)
    for (user_id, org_id, conversation_id), ids in by_user.items():
        payload = {
            "notification_ids": ids,
            "conversation_id": conversation_id,
            "unread_total": unread_total(user_id, org_id),
        }
        publish(NOTIFICATION_CLEARED, payload, user_ids=[user_id])


# --- access ------------------------------------------------------------------------------------------------


def publish_conversation_access_changed(conversation: Conversation) -> None:
    """Its owner or team changed: who may see it may have too, so its watchers check again (after commit)."""
    publish_access_changed(conversation_ids=[conversation.pk])


def publish_visibility_changed(organization_id: int) -> None:
    """The organization's visibility rule changed: every member's open sockets check what they watch."""
    user_ids = Membership.objects.filter(organization_id=organization_id).values_list("user_id", flat=True)
    publish_access_changed(user_ids=list(user_ids))


def publish_consent_changed(organization_id: int, phone_number: str) -> None:
    """To everyone looking at a conversation with ``phone_number``: its consent is now this."""
    conversation_ids = list(
        Conversation.objects.filter(
            organization_id=organization_id, customer_number=phone_number
        ).values_list("pk", flat=True)
    )
    if not conversation_ids:
        return
    state = (
        ConsentState.objects.filter(organization_id=organization_id, phone_number=phone_number)
        .values("opted_out", "blocked", "do_not_contact")
        .first()
    ) or {"opted_out": False, "blocked": False, "do_not_contact": False}
    publish(CONSENT_CHANGED, {"phone_number": phone_number, **state}, conversation_ids=conversation_ids)


def publish_status_batch(steps: list[tuple], touched: set[int]) -> None:
    """The live events of a batch of applied status callbacks (``services.status.apply_statuses``), after
    commit: ``message.status`` for every step a message moved (to its thread, its sender and the
    conversation's owner), and ``conversation.updated`` for the conversations whose last message's status
    changed (``touched``). ``steps``: ``(id, conversation_id, organization_id, created_at, sender_id,
    status, error_code, error_message)`` rows in the order they were applied.

    Most of a batch's messages have nobody watching (a campaign's texts, an agent who closed the page): the
    groups listened to are asked first (``realtime.listened``, after commit, so a socket that joins later
    reads the committed state) and only their events are built. Three queries for a batch someone watches,
    one for a batch nobody does."""
    transaction.on_commit(lambda: _publish_status_batch_now(steps, touched))


def _publish_status_batch_now(steps: list[tuple], touched: set[int]) -> None:
    owners = dict(Conversation.objects.filter(pk__in={row[1] for row in steps}).values_list("pk", "owner_id"))

    def groups_of(conversation_id: int, sender_id: int | None) -> list[str]:
        users = {u for u in (sender_id, owners.get(conversation_id)) if u}
        return [user_group(u) for u in users] + [conversation_group(conversation_id)]

    heard = listened({g for row in steps for g in groups_of(row[1], row[4])})
    steps = [row for row in steps if heard.intersection(groups_of(row[1], row[4]))]
    if not steps:
        return
    conversations = {
        c.pk: c
        for c in Conversation.objects.filter(pk__in={row[1] for row in steps}).select_related(
            "phone_number", "owner", "team"
        )
    }
    users: dict[int, set[int]] = {}
    for message_id, conversation_id, _org, _at, sender_id, status, error_code, error_message in steps:
        conversation = conversations.get(conversation_id)
        owner_id = conversation.owner_id if conversation is not None else None
        to = users.setdefault(conversation_id, set())
        to.update(u for u in (sender_id, owner_id) if u)
        payload = {
            "conversation_id": conversation_id,
            "message_id": message_id,
            "status": status,
            "error_code": error_code,
            "error_message": error_message,
        }
        publish(
            MESSAGE_STATUS,
            payload,
            user_ids={u for u in (sender_id, owner_id) if u},
            conversation_ids=[conversation_id],
            event_id=f"{MESSAGE_STATUS}.{message_id}.{status}",
        )
    touched_items = {pk: (conversations[pk], users.get(pk, set())) for pk in touched if pk in conversations}
    if touched_items:
        publish_conversations_updated(touched_items)


def publish_conversations_updated(items: dict[int, tuple[Conversation, set[int]]]) -> None:
    """``publish_conversation_updated`` for several conversations whose instances are current (read in
    this transaction with their number, owner and team), each to its group and its users: one query for
    every user's unread count."""
    pairs = [(pk, u) for pk, (_c, user_ids) in items.items() for u in user_ids]
    counts: dict[tuple[int, int], int] = {}
    if pairs:
        rows = ConversationUserState.objects.filter(
            conversation_id__in={pk for pk, _ in pairs}, user_id__in={u for _, u in pairs}
        ).values_list("conversation_id", "user_id", "unread_count")
        counts = {(c, u): n for c, u, n in rows}
    users_by_org: dict[int, set[int]] = {}
    for conversation, user_ids in items.values():
        users_by_org.setdefault(conversation.organization_id, set()).update(user_ids)
    totals = {org_id: unread_totals(users, org_id) for org_id, users in users_by_org.items()}
    for pk, (conversation, user_ids) in items.items():
        body = conversation_payload(conversation)
        event_id = new_event_id()
        org_totals = totals[conversation.organization_id]
        for user_id in user_ids:
            publish(
                CONVERSATION_UPDATED,
                {
                    "conversation": body,
                    "unread": counts.get((pk, user_id), 0),
                    "unread_total": org_totals.get(user_id, 0),
                },
                user_ids=[user_id],
                event_id=event_id,
            )
        publish(
            CONVERSATION_UPDATED,
            {"conversation": body, "unread": None},
            conversation_ids=[pk],
            event_id=event_id,
        )
