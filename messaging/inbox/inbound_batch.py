"""The inbox's side of a batch of inbound texts, inside the transaction that stores them.

``actions.handle_inbound`` files one text after its transaction committed: it reads the message and the
conversation again, then about fifteen statements (session, consent, dismissed, recipients, unread counts,
one notification and one unread total per recipient). A batch of texts (messaging/services/inbound_batch.py)
is filed here in the transaction that stores them, with the instances it already holds (each conversation
locked, with its number, owner and team) and a constant number of statements for the whole batch; the
rules are ``handle_inbound``'s, applied per conversation:

- every text joins its session (one read of the batch's sessions, one INSERT of the new ones, one UPDATE of
  the counts);
- a blocked number's texts notify no one (the thread's viewers still see them arrive);
- otherwise who is told is ``notifications.inbound_recipients``' answer (a first text is a request to
  everyone who may see it; an active owner alone; an idle owner and the team), counted once per text:
  unread counts and the one open notification per recipient grow by the conversation's number of texts;
- after commit: ``message.created`` per text (to its thread and the recipients), then per conversation one
  ``conversation.updated`` and one ``notification.created`` per recipient, with the state at the end of the
  batch (a client shows the last one anyway).

The batch's texts have no consent keyword (those go one by one through ``handle_inbound``), so the opt-out
rule of ``handle_inbound`` never applies here.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from messaging.inbox import events
from messaging.inbox.notifications import record_link
from messaging.inbox.visibility import inbox_settings_for, visibility_q
from messaging.models import (
    Conversation,
    ConversationUserState,
    InboxSettings,
    Message,
    MessageSession,
    Notification,
)
from tenancy.models import Membership


class InboundGroup:
    """The texts of one conversation in a batch, in order, and what the store found."""

    __slots__ = ("conversation", "messages", "created", "blocked", "recipients")

    def __init__(self, conversation: Conversation, *, created: bool, blocked: bool) -> None:
        self.conversation, self.created, self.blocked = conversation, created, blocked
        self.messages: list[Message] = []
        self.recipients: dict[int, str] = {}


def file_inbound_texts(groups: list[InboundGroup]) -> None:
    """Sessions, unread counts, notifications and live events for a batch of stored inbound texts, in the
    caller's transaction (each group's conversation locked by the caller)."""
    if not groups:
        return
    settings = {org: inbox_settings_for(org) for org in {g.conversation.organization_id for g in groups}}
    join_sessions(groups, settings)
    told = [g for g in groups if not g.blocked]
    if told:
        ConversationUserState.objects.filter(
            conversation_id__in=[g.conversation.pk for g in told], dismissed=True
        ).update(dismissed=False)
        _recipients(told, settings)
    _unread(told)
    notifications = _notify(told)
    totals = _unread_totals(notifications)
    for group in groups:
        for message in group.messages:
            # One frame to the thread and the recipients (copies share the message's id).
            events.publish(
                events.MESSAGE_CREATED,
                {"conversation_id": message.conversation_id, "message": events.message_payload(message)},
                user_ids=list(group.recipients),
                conversation_ids=[message.conversation_id],
                event_id=f"{events.MESSAGE_CREATED}.{message.pk}",
            )
    if told:
        events.publish_conversations_updated(
            {g.conversation.pk: (g.conversation, set(g.recipients)) for g in told}
        )
    for notification in notifications:
        total = totals.get((notification.recipient_id, notification.organization_id), 0)
        events.publish(
            events.NOTIFICATION_CREATED,
            {"notification": events.notification_payload(notification), "unread_total": total},
            user_ids=[notification.recipient_id],
        )


def join_sessions(groups: list[InboundGroup], settings: dict[int, InboxSettings]) -> None:
    """``state.attach_to_session`` for every text of the batch: one read, one INSERT, one UPDATE."""
    by_conversation = {g.conversation.pk: g for g in groups}
    earliest = min(m.created_at for g in groups for m in g.messages)
    known: dict[int, list[MessageSession]] = {}
    for session in MessageSession.objects.filter(
        conversation_id__in=list(by_conversation), ends_at__gt=earliest
    ).order_by("started_at"):
        known.setdefault(session.conversation_id, []).append(session)
    new: list[MessageSession] = []
    added: dict[int, int] = {}  # existing session id → texts
    owners: dict[int, int] = {}  # existing session without an owner → the conversation's owner
    for pk, group in by_conversation.items():
        sessions = known.setdefault(pk, [])
        conversation = group.conversation
        for message in group.messages:
            at = message.created_at
            covering = [s for s in sessions if s.started_at <= at < s.ends_at]
            if covering:
                session = covering[-1]
            else:
                ends = at + timedelta(minutes=settings[conversation.organization_id].session_timeout_minutes)
                following = [s.started_at for s in sessions if s.started_at > at]
                if following and min(following) < ends:
                    ends = min(following)
                session = MessageSession(
                    organization_id=conversation.organization_id,
                    conversation_id=pk,
                    started_at=at,
                    ends_at=ends,
                    owner_id=conversation.owner_id,
                    message_count=0,
                )
                new.append(session)
                sessions.append(session)
                sessions.sort(key=lambda s: s.started_at)
            if session.pk is None:
                session.message_count += 1
            else:
                added[session.pk] = added.get(session.pk, 0) + 1
                if session.owner_id is None and conversation.owner_id is not None:
                    owners[session.pk] = conversation.owner_id
    if new:
        MessageSession.objects.bulk_create(new)
    if added:
        values = ", ".join(["(%s::bigint, %s::int, %s::bigint)"] * len(added))
        params = [v for pk, n in added.items() for v in (pk, n, owners.get(pk))]
        table = MessageSession._meta.db_table
        sql = (
            f"UPDATE {table} AS s SET message_count = s.message_count + v.n, "  # noqa: S608
            "owner_id = COALESCE(s.owner_id, v.owner) "
            f"FROM (VALUES {values}) AS v(id, n, owner) WHERE s.id = v.id"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


def _recipients(groups: list[InboundGroup], settings: dict[int, InboxSettings]) -> None:
    """``notifications.inbound_recipients`` for every conversation of the batch: the members once per
    organization, every restricted member's visibility evaluated on every conversation in one query, the
    owners' last activity in one query, each team's members once."""
    now = timezone.now()
    members: dict[int, list[Membership]] = {}
    filters = {}
    for org_id in {g.conversation.organization_id for g in groups}:
        members[org_id] = list(
            Membership.objects.filter(organization_id=org_id, is_active=True).select_related(
                "user", "organization"
            )
        )
        for m in members[org_id]:
            filters[m.pk] = visibility_q(m, settings[org_id])
    restricted = {f"may_see_{pk}": q for pk, q in filters.items() if q is not None}
    seen: dict[int, dict] = {}
    if restricted:
        from django.db.models import BooleanField, ExpressionWrapper

        checks = {name: ExpressionWrapper(q, output_field=BooleanField()) for name, q in restricted.items()}
        for row in Conversation.objects.filter(pk__in=[g.conversation.pk for g in groups]).values(
            "pk", **checks
        ):
            seen[row["pk"]] = row
    owned = [g.conversation for g in groups if g.conversation.owner_id is not None and not g.created]
    active: dict[int, object] = {}
    if owned:
        rows = ConversationUserState.objects.filter(
            conversation_id__in=[c.pk for c in owned], user_id__in={c.owner_id for c in owned}
        ).values_list("conversation_id", "user_id", "last_active_at")
        owners = {c.pk: c.owner_id for c in owned}
        active = {conv: at for conv, user, at in rows if owners.get(conv) == user}
    teams: dict[int, set[int]] = {}
    for group in groups:
        conversation = group.conversation
        may_see = {
            m.user_id
            for m in members[conversation.organization_id]
            if filters[m.pk] is None or seen.get(conversation.pk, {}).get(f"may_see_{m.pk}")
        }
        if conversation.team_id is not None:
            if conversation.team_id not in teams:
                teams[conversation.team_id] = set(
                    Membership.objects.filter(teams__pk=conversation.team_id, is_active=True).values_list(
                        "user_id", flat=True
                    )
                )
            team = teams[conversation.team_id] & may_see
        else:
            team = may_see
        owner = conversation.owner_id
        if owner is None or group.created:
            group.recipients = {uid: Notification.Kind.REQUEST for uid in team | ({owner} - {None})}
            continue
        idle = settings[conversation.organization_id].idle_timeout_minutes
        last = active.get(conversation.pk)
        if last is not None and last >= now - timedelta(minutes=idle):
            group.recipients = {owner: Notification.Kind.MESSAGE}
            continue
        recipients = {uid: Notification.Kind.IDLE for uid in team if uid != owner}
        recipients[owner] = Notification.Kind.MESSAGE
        group.recipients = recipients


def _unread(groups: list[InboundGroup]) -> None:
    """Each recipient's unread count grows by the conversation's texts: the missing rows, then one UPDATE."""
    pairs = [(g, uid) for g in groups for uid in g.recipients]
    if not pairs:
        return
    ConversationUserState.objects.bulk_create(
        [
            ConversationUserState(
                organization_id=g.conversation.organization_id, conversation_id=g.conversation.pk, user_id=uid
            )
            for g, uid in pairs
        ],
        ignore_conflicts=True,
    )
    values = ", ".join(["(%s::bigint, %s::bigint, %s::int)"] * len(pairs))
    params = [v for g, uid in pairs for v in (g.conversation.pk, uid, len(g.messages))]
    table = ConversationUserState._meta.db_table
    sql = (
        f"UPDATE {table} AS s SET unread_count = s.unread_count + v.n, updated_at = %s "  # noqa: S608
        f"FROM (VALUES {values}) AS v(conversation_id, user_id, n) "
        "WHERE s.conversation_id = v.conversation_id AND s.user_id = v.user_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [timezone.now(), *params])


def _notify(groups: list[InboundGroup]) -> list[Notification]:
    """``notifications.notify`` for the batch: the open notifications of its conversations read once,
    refreshed with one UPDATE (count grows by the texts), the missing ones created with one INSERT."""
    wanted = [(g, uid, kind) for g in groups for uid, kind in g.recipients.items()]
    if not wanted:
        return []
    open_ones = {
        (n.conversation_id, n.recipient_id): n
        for n in Notification.objects.filter(
            conversation_id__in=[g.conversation.pk for g in groups], cleared_at__isnull=True
        )
    }
    now = timezone.now()
    refreshed, created = [], []
    for group, uid, kind in wanted:
        conversation = group.conversation
        record_type, record_id = record_link(conversation)
        last = group.messages[-1]
        existing = open_ones.get((conversation.pk, uid))
        if existing is not None:
            existing.kind, existing.message_id, existing.is_read = kind, last.pk, False
            existing.count += len(group.messages)
            existing.record_type, existing.record_id, existing.updated_at = record_type, record_id, now
            existing.conversation = conversation
            refreshed.append((existing, len(group.messages)))
        else:
            notification = Notification(
                organization_id=conversation.organization_id,
                recipient_id=uid,
                kind=kind,
                conversation=conversation,
                message_id=last.pk,
                record_type=record_type,
                record_id=record_id,
                count=len(group.messages),
            )
            created.append(notification)
    if refreshed:
        values = ", ".join(
            ["(%s::bigint, %s::text, %s::bigint, %s::int, %s::text, %s::bigint)"] * len(refreshed)
        )
        params = [
            v
            for n, added in refreshed
            for v in (n.pk, n.kind, n.message_id, added, n.record_type, n.record_id)
        ]
        table = Notification._meta.db_table
        sql = (
            f"UPDATE {table} AS n SET kind = v.kind, message_id = v.message_id, count = n.count + v.n, "  # noqa: S608
            "is_read = false, record_type = v.record_type, record_id = v.record_id, updated_at = %s "
            f"FROM (VALUES {values}) AS v(id, kind, message_id, n, record_type, record_id) "
            "WHERE n.id = v.id RETURNING n.id, n.count"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [now, *params])
            counts = dict(cursor.fetchall())
        for n, _ in refreshed:
            n.count = counts.get(n.pk, n.count)
    if created:
        Notification.objects.bulk_create(created)
    return [n for n, _ in refreshed] + created


def _unread_totals(notifications: list[Notification]) -> dict[tuple[int, int], int]:
    """Each recipient's unread total in the organization (what ``notification.created`` carries), one
    query for the batch."""
    if not notifications:
        return {}
    rows = (
        ConversationUserState.objects.filter(
            user_id__in={n.recipient_id for n in notifications},
            organization_id__in={n.organization_id for n in notifications},
            unread_count__gt=0,
        )
        .values("user_id", "organization_id")
        .annotate(n=Sum("unread_count"))
    )
    return {(r["user_id"], r["organization_id"]): r["n"] or 0 for r in rows}
