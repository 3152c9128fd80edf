"""Inbox actions: who owns a conversation, its status, records created from it, and the reactions to stored
messages (the receivers of messaging/signals.py call ``handle_*``). Who is notified lives in
services/inbox_notifications.py, per-user state and sessions in services/inbox_state.py.

Every ``do_*`` is atomic, writes its audit row and publishes its live events through messaging/inbox/events.py
(after commit).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from messaging.inbox import events, steps
from messaging.inbox.notifications import (
    clear_notifications,
    inbound_recipients,
    notify,
    open_notification_users,
    owner_is_active,
    team_member_ids,
)
from messaging.inbox.state import attach_to_session, count_in_session, record_activity, user_state
from messaging.inbox.visibility import inbox_settings_for, visibility_q
from messaging.models import (
    ConsentEvent,
    ConsentState,
    Conversation,
    ConversationUserState,
    InboxSettings,
    Message,
    Notification,
)
from quicksend.errors import Conflict
from tenancy import audit
from tenancy.models import Membership, Team


class NeedsConfirmation(Conflict):
    """Assigning to yourself a conversation someone else owns needs an explicit confirmation."""

    def __init__(self, message: str, owner_id: int | None):
        super().__init__(message)
        self.owner_id = owner_id

    def details(self) -> dict:
        return {"needs_confirmation": True, "owner_id": self.owner_id}


# --- reactions to stored messages (called by the signal receivers in messaging/receivers.py) ---------------


@transaction.atomic
def handle_inbound(
    message_id: int, *, blocked: bool = False, created_conversation: bool = False
) -> dict[int, str] | None:
    """Session, unread counts, notifications and live events for one stored inbound text. Returns who was
    notified (user id → kind), or None when this text's step was done already.

    Runs once per text whatever the number of tries: its ``InboxStep`` row is marked done in this same
    transaction (``steps.claim``), so a retry never counts or notifies twice; the flags stored with the row
    win over the arguments. Every live event goes out after commit, best effort: a failed publish never
    undoes the bookkeeping. Call it through ``steps.run_step``, which records a failure for a retry."""
    claimed = steps.claim(message_id, blocked=blocked, created_conversation=created_conversation)
    if claimed is None:
        return None
    created_conversation, blocked = claimed
    message = Message.objects.get(pk=message_id)
    # The thread's open viewers first (the frames go out in this order once the transaction commits).
    events.publish_message_created(message)
    return _handle_inbound(message, blocked=blocked, created_conversation=created_conversation)


def _handle_inbound(message: Message, *, blocked: bool, created_conversation: bool) -> dict[int, str]:
    # Serializes concurrent texts of one conversation, so counts and the one-open-notification rule hold.
    conversation = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("phone_number", "owner", "team")
        .get(pk=message.conversation_id)
    )
    settings = inbox_settings_for(conversation.organization_id)
    attach_to_session(conversation, message, settings)
    consent = (
        ConsentState.objects.filter(
            organization_id=conversation.organization_id, phone_number=conversation.customer_number
        )
        .values("blocked", "opted_out")
        .first()
    ) or {}
    if blocked or consent.get("blocked"):
        return {}
    if consent.get("opted_out") and _is_opt_out(message):
        # Someone leaving is no one to accept, and their first text is no "new texter": only an owner hears
        # of it (as a text of their thread); a dismissed conversation stays dismissed.
        owner_id = None if created_conversation else conversation.owner_id
        recipients = {owner_id: Notification.Kind.MESSAGE} if owner_id else {}
    else:
        # A new text brings a dismissed conversation back for everyone who dismissed it.
        ConversationUserState.objects.filter(conversation=conversation, dismissed=True).update(
            dismissed=False
        )
        recipients = inbound_recipients(
            conversation, settings, timezone.now(), first_text=created_conversation
        )
    if recipients:
        # Two statements whoever is told (a team handover may tell many): the missing rows, then +1 for all.
        # The conversation's row lock above keeps concurrent texts of this conversation in line.
        ConversationUserState.objects.bulk_create(
            [
                ConversationUserState(
                    organization_id=conversation.organization_id, conversation=conversation, user_id=user_id
                )
                for user_id in recipients
            ],
            ignore_conflicts=True,
        )
        ConversationUserState.objects.filter(conversation=conversation, user_id__in=list(recipients)).update(
            unread_count=F("unread_count") + 1
        )
    by_kind: dict[str, list[int]] = {}
    for user_id, kind in recipients.items():
        by_kind.setdefault(kind, []).append(user_id)
    notifications = []
    for kind, user_ids in by_kind.items():
        notifications += notify(conversation, user_ids, kind, message)
    events.publish_message_created(message, user_ids=recipients, to_conversation=False)
    # Read above under its row lock with its relations; nothing here changes the conversation's row.
    events.publish_conversation_updated(conversation, user_ids=recipients, current=True)
    for notification in notifications:
        events.publish_notification_created(notification)
    return recipients


def _is_opt_out(message: Message) -> bool:
    """Whether this text opted its sender out: the consent ledger links the keyword's event to it (Twilio's
    ``OptOutType`` or our keyword match decided when it was stored)."""
    return ConsentEvent.objects.filter(message_id=message.pk, action=ConsentEvent.Action.OPT_OUT).exists()


@transaction.atomic
def handle_outbound(message_id: int, sender_id: int | None = None) -> dict | None:
    """A message to send was stored: session, the sender's activity (replying reads the thread), events.
    Once per message, like ``handle_inbound`` (its ``InboxStep`` is marked done here): None when it was
    done already. Call it through ``steps.run_step(..., outbound=True)``.

    It runs after every send, so it reads the message with its sender and conversation (number, owner,
    team) in one query and writes each thing with one statement: about six queries in all."""
    if steps.claim(message_id) is None:
        return None
    message = Message.objects.select_related(
        "sender", "conversation__phone_number", "conversation__owner", "conversation__team"
    ).get(pk=message_id)
    conversation = message.conversation
    count_in_session(conversation, message)
    sender_id = sender_id or message.sender_id
    users = {u for u in (sender_id, conversation.owner_id) if u}
    if sender_id:
        _mark_read_after_reply(conversation, sender_id, message.pk)
    events.publish_message_created(message, user_ids=users)
    # Read just above with its relations; the session and read state below it do not change its row.
    events.publish_conversation_updated(conversation, user_ids=users, current=True)
    return {}


def _mark_read_after_reply(conversation: Conversation, user_id: int, message_id: int) -> None:
    """``_mark_read`` for someone who just wrote ``message_id``: their state in one upsert, then their
    message and assignment notifications cleared."""
    table = ConversationUserState._meta.db_table
    now = timezone.now()
    sql = (
        f"INSERT INTO {table} (organization_id, conversation_id, user_id, unread_count, "  # noqa: S608
        "last_read_message_id, dismissed, last_active_at, updated_at) "
        "VALUES (%s, %s, %s, 0, %s, false, %s, %s) "
        "ON CONFLICT (conversation_id, user_id) DO UPDATE SET unread_count = 0, "
        "last_read_message_id = excluded.last_read_message_id, last_active_at = excluded.last_active_at, "
        "updated_at = excluded.updated_at"
    )
    from django.db import connection

    if connection.vendor != "postgresql":
        _mark_read(conversation, user_id, last_message_id=message_id)
        return
    with connection.cursor() as cursor:
        cursor.execute(sql, [conversation.organization_id, conversation.pk, user_id, message_id, now, now])
    clear_notifications(
        conversation, user_ids=[user_id], kinds=[Notification.Kind.MESSAGE, Notification.Kind.ASSIGNED]
    )


@transaction.atomic
def handle_status(message_id: int) -> None:
    """A message's status moved forward: tell the thread's viewers; the list preview follows the newest."""
    message = Message.objects.select_related("conversation__phone_number").get(pk=message_id)
    conversation = message.conversation
    users = {u for u in (message.sender_id, conversation.owner_id) if u}
    events.publish_message_status(message, user_ids=users)
    # The conversation's preview is its newest message: the one whose time it carries (it moves only forward).
    newest = conversation.last_message_at is not None and conversation.last_message_at == message.created_at
    if newest and conversation.last_message_status != message.status:
        Conversation.objects.filter(pk=conversation.pk).update(last_message_status=message.status)
        events.publish_conversation_updated(conversation, user_ids=users)


# --- actions ------------------------------------------------------------------------------------------


def _membership(conversation: Conversation, user) -> Membership | None:
    return _membership_in(conversation.organization_id, user)


def _membership_in(organization_id: int, user) -> Membership | None:
    """The user's active membership of the organization (None for no user, or an outsider)."""
    if user is None or not getattr(user, "pk", None):
        return None
    return Membership.objects.filter(organization_id=organization_id, user_id=user.pk, is_active=True).first()


def _check_may_see(conversation: Conversation, membership: Membership | None) -> None:
    q = visibility_q(membership) if membership is not None else Q(pk__in=[])
    if q is not None and not Conversation.objects.filter(pk=conversation.pk).filter(q).exists():
        raise PermissionDenied("You may not see this conversation.")


def _audit(conversation: Conversation, actor, action: str, changes: dict) -> None:
    audit.record(conversation.organization, actor, f"conversation.{action}", conversation, changes)


def _mark_read(conversation: Conversation, user_id: int, last_message_id: int | None = None) -> None:
    last_id = last_message_id or (
        Message.objects.filter(conversation_id=conversation.pk)
        .order_by("-id")
        .values_list("pk", flat=True)
        .first()
    )
    state = user_state(conversation, user_id)
    state.unread_count = 0
    state.last_read_message_id = last_id
    state.last_active_at = timezone.now()
    state.save(update_fields=["unread_count", "last_read_message_id", "last_active_at", "updated_at"])
    clear_notifications(
        conversation, user_ids=[user_id], kinds=[Notification.Kind.MESSAGE, Notification.Kind.ASSIGNED]
    )


def _locked(conversation: Conversation) -> Conversation:
    return (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("organization", "phone_number", "owner", "team")
        .get(pk=conversation.pk)
    )


def _set_owner(conversation: Conversation, owner, team: Team | None | bool = False) -> dict:
    changes = {}
    if (owner.pk if owner else None) != conversation.owner_id:
        changes["owner"] = [conversation.owner_id, owner.pk if owner else None]
        conversation.owner = owner
    if team is not False and (team.pk if team else None) != conversation.team_id:
        changes["team"] = [conversation.team_id, team.pk if team else None]
        conversation.team = team
    if changes:
        conversation.save(update_fields=["owner", "team", "updated_at"])
        events.publish_conversation_access_changed(conversation)
    return changes


@transaction.atomic
def do_mark_conversation_read(conversation: Conversation, user) -> None:
    """The user read the thread: their unread count drops to 0 and their text notifications clear."""
    conversation = _locked(conversation)
    _mark_read(conversation, user.pk)
    events.publish_conversation_updated(conversation, user_ids=[user.pk])


@transaction.atomic
def do_assign_conversation_to_me(conversation: Conversation, actor, *, confirm: bool = False) -> Conversation:
    """ "Assign to me". Taking over a conversation someone else owns needs ``confirm=True`` (the client shows
    "X owns this conversation. Assign it to you?" from the NeedsConfirmation message); audited."""
    conversation = _locked(conversation)
    membership = _membership(conversation, actor)
    _check_may_see(conversation, membership)
    previous = conversation.owner
    if previous is not None and previous.pk == actor.pk:
        return conversation
    if previous is not None and not confirm:
        settings = inbox_settings_for(conversation.organization_id)
        idle = not owner_is_active(conversation, settings, timezone.now())
        state = "has been idle" if idle else "is active"
        raise NeedsConfirmation(
            f"{_name(previous)} owns this conversation and {state}. Assign it to you?", previous.pk
        )
    changes = _set_owner(conversation, actor)
    record_activity(conversation, actor.pk)
    _audit(conversation, actor, "assigned", {**changes, "confirmed": bool(previous is not None)})
    others = [u for u in open_notification_users(conversation) if u != actor.pk]
    clear_notifications(
        conversation, user_ids=others, kinds=[Notification.Kind.REQUEST, Notification.Kind.IDLE]
    )
    clear_notifications(
        conversation, user_ids=[actor.pk], kinds=[Notification.Kind.REQUEST, Notification.Kind.IDLE]
    )
    _move_unread(conversation, actor.pk)
    users = {actor.pk} | ({previous.pk} if previous else set())
    events.publish_conversation_updated(conversation, user_ids=users)
    return conversation


def _name(user) -> str:
    return (user.get_full_name() or user.get_username()) if user else "Nobody"


def _move_unread(conversation: Conversation, owner_id: int) -> None:
    # Once someone owns it, the others' unread counts for it stop counting (they were told it was taken).
    ConversationUserState.objects.filter(conversation=conversation).exclude(user_id=owner_id).update(
        unread_count=0
    )


def _may_reassign(conversation: Conversation, membership: Membership | None) -> bool:
    if membership is None:
        return False
    return membership.is_admin or conversation.owner_id in (None, membership.user_id)


@transaction.atomic
def do_reassign_conversation(
    conversation: Conversation, actor, *, user=None, team: Team | None = None
) -> Conversation:
    """Give the conversation to another user and/or a team (admins, the owner, or anyone while unowned).
    The new owner sees the whole history; they (or the team's members) get an "assigned" notification."""
    conversation = _locked(conversation)
    membership = _membership(conversation, actor)
    _check_may_see(conversation, membership)
    if not _may_reassign(conversation, membership):
        raise PermissionDenied("Only an admin or the conversation's owner can reassign it.")
    return _reassign(conversation, actor, user, team)


def _reassign(conversation: Conversation, actor, user, team: Team | None) -> Conversation:
    if user is None and team is None:
        raise ValidationError("Choose a user or a team.")
    if (
        user is not None
        and not Membership.objects.filter(
            organization_id=conversation.organization_id, user_id=user.pk, is_active=True
        ).exists()
    ):
        raise ValidationError({"user": "The user must be an active member of this organization."})
    if team is not None and team.organization_id != conversation.organization_id:
        raise ValidationError({"team": "Not found."})
    previous_owner_id = conversation.owner_id
    changes = _set_owner(conversation, user, team if team is not None else (False if user else None))
    if not changes:
        return conversation
    _audit(conversation, actor, "reassigned", changes)
    if user is not None:
        new_ids = {user.pk}
    else:
        new_ids = team_member_ids(team.pk)
    new_ids.discard(getattr(actor, "pk", None))
    if previous_owner_id and previous_owner_id not in new_ids:
        clear_notifications(conversation, user_ids=[previous_owner_id])
    clear_notifications(conversation, kinds=[Notification.Kind.REQUEST, Notification.Kind.IDLE])
    for n in notify(conversation, new_ids, Notification.Kind.ASSIGNED, None):
        events.publish_notification_created(n)
    if user is not None:
        _move_unread(conversation, user.pk)
    users = new_ids | {u for u in (previous_owner_id, getattr(actor, "pk", None)) if u}
    events.publish_conversation_updated(conversation, user_ids=users)
    return conversation


@transaction.atomic
def do_bulk_reassign_conversations(
    conversations: Iterable[Conversation], actor, *, user=None, team: Team | None = None
) -> int:
    """Reassign several conversations at once (all or nothing). Returns how many changed."""
    changed = 0
    for conversation in conversations:
        before = (conversation.owner_id, conversation.team_id)
        after = do_reassign_conversation(conversation, actor, user=user, team=team)
        changed += (after.owner_id, after.team_id) != before
    return changed


def _set_status(conversation: Conversation, actor, status: str) -> Conversation:
    conversation = _locked(conversation)
    _check_may_see(conversation, _membership(conversation, actor))
    if status == Conversation.Status.OPEN and not conversation.is_current:
        raise Conflict("This conversation has ended; the next message starts a new one.")
    if conversation.status != status:
        old = conversation.status
        conversation.status = status
        conversation.save(update_fields=["status", "updated_at"])
        action = "archived" if status == Conversation.Status.ARCHIVED else "reopened"
        _audit(conversation, actor, action, {"status": [old, status]})
        events.publish_conversation_updated(conversation, user_ids=[actor.pk])
    return conversation


@transaction.atomic
def do_archive_conversation(conversation: Conversation, actor) -> Conversation:
    return _set_status(conversation, actor, Conversation.Status.ARCHIVED)


@transaction.atomic
def do_reopen_conversation(conversation: Conversation, actor) -> Conversation:
    return _set_status(conversation, actor, Conversation.Status.OPEN)


@transaction.atomic
def do_accept_conversation(conversation: Conversation, actor) -> Conversation:
    """Accept a first text: the actor becomes the owner; everyone's request notifications clear."""
    conversation = _locked(conversation)
    _check_may_see(conversation, _membership(conversation, actor))
    if conversation.owner_id is not None and conversation.owner_id != actor.pk:
        raise Conflict(f"{_name(conversation.owner)} already accepted this conversation.")
    changes = _set_owner(conversation, actor)
    record_activity(conversation, actor.pk)
    _audit(conversation, actor, "accepted", changes)
    clear_notifications(conversation, kinds=[Notification.Kind.REQUEST, Notification.Kind.IDLE])
    _move_unread(conversation, actor.pk)
    events.publish_conversation_updated(conversation, user_ids=[actor.pk])
    return conversation


@transaction.atomic
def do_dismiss_conversation(conversation: Conversation, actor) -> None:
    """Hide the conversation from the actor's notifications and inbox until a new message arrives."""
    conversation = _locked(conversation)
    _check_may_see(conversation, _membership(conversation, actor))
    state = user_state(conversation, actor.pk)
    state.dismissed = True
    state.unread_count = 0
    state.save(update_fields=["dismissed", "unread_count", "updated_at"])
    clear_notifications(conversation, user_ids=[actor.pk])
    events.publish_conversation_updated(conversation, user_ids=[actor.pk])


@transaction.atomic
def do_block_conversation(conversation: Conversation, actor) -> Conversation:
    """Block the customer number for the whole organization (consent ledger, audited there); archive the
    conversation and clear every notification of it. Later texts are stored but raise nothing."""
    from messaging.services.consent import do_change_consent

    conversation = _locked(conversation)
    _check_may_see(conversation, _membership(conversation, actor))
    do_change_consent(conversation.organization, conversation.customer_number, "block", "agent", actor=actor)
    conversation.status = Conversation.Status.ARCHIVED
    conversation.save(update_fields=["status", "updated_at"])
    clear_notifications(conversation)
    ConversationUserState.objects.filter(conversation=conversation).update(unread_count=0)
    events.publish_conversation_updated(conversation, user_ids=[actor.pk])
    return conversation


@transaction.atomic
def do_create_record_from_conversation(conversation: Conversation, actor, record_type: str, data: dict):
    """Create a record of an allowed type ("Allow create to") with the customer's number; it becomes the
    conversation's "regarding" record, so the thread shows on it too (``conversations_for_record``)."""
    from crm.models import RecordTypeConfig, model_for
    from crm.services import do_create_record, types_creatable_from_conversation

    conversation = _locked(conversation)
    _check_may_see(conversation, _membership(conversation, actor))
    org = conversation.organization
    if record_type not in types_creatable_from_conversation(org):
        raise ValidationError(
            {"record_type": f"Records of type '{record_type}' cannot be created from a conversation."}
        )
    model = model_for(record_type)
    data = dict(data)
    known = {f.name for f in model._meta.concrete_fields} | {f.attname for f in model._meta.concrete_fields}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValidationError({name: f"Not a field of {model._meta.verbose_name}." for name in unknown})
    phone_field = RecordTypeConfig.for_type(org.pk, record_type).sms_phone_field or next(
        iter(model.phone_fields), ""
    )
    if phone_field:
        data[phone_field] = conversation.customer_number
    record = do_create_record(org, actor, record_type, data)
    conversation.regarding_type, conversation.regarding_id = record_type, record.pk
    conversation.save(update_fields=["regarding_type", "regarding_id", "updated_at"])
    _audit(conversation, actor, "record_created", {"regarding": [None, f"{record_type}:{record.pk}"]})
    Notification.objects.filter(conversation=conversation, cleared_at__isnull=True).update(
        record_type=record_type, record_id=record.pk
    )
    events.publish_conversation_updated(conversation, user_ids=[actor.pk])
    return record


def conversations_for_record(record):
    """The conversations a record's page shows: matched to it, or created from it ("regarding")."""
    return Conversation.objects.filter(organization_id=record.organization_id).filter(
        Q(record_type=record.record_type, record_id=record.pk)
        | Q(regarding_type=record.record_type, regarding_id=record.pk)
    )


def may_change_record_owner_conversations(record, actor) -> bool:
    """Whether ``actor`` may choose what happens to a record's conversations after its owner changed: an
    admin, the record's owner, or the owner of one of its current conversations."""
    membership = _membership_in(record.organization_id, actor)
    return membership is not None and (
        membership.is_admin
        or record.owner_id == actor.pk
        or conversations_for_record(record).filter(is_current=True, owner_id=actor.pk).exists()
    )


def _check_may_change_record_owner(record, actor) -> None:
    if not may_change_record_owner_conversations(record, actor):
        raise PermissionDenied("Only an admin, the record's owner or its conversations' owner can do this.")


@transaction.atomic
def do_change_record_owner_conversations(record, new_owner, carry_over: bool, actor) -> int:
    """After a record's owner changed, the caller's explicit choice for its current conversations:

    - ``carry_over=True``: they move to ``new_owner`` with their whole history (an "assigned" notification);
    - ``carry_over=False``: they end (``is_current=False``, archived) and the next text starts a new one.

    Returns how many conversations changed. Call it right after ``crm.services.do_update_record`` /
    ``do_reassign_records`` with the choice the user made ("Carry over the conversations?").

    Only an admin, the record's owner (this is called right after the owner changed) or whoever owns one of
    the record's current conversations (the previous owner handing them over) may do this."""
    _check_may_change_record_owner(record, actor)
    if (
        new_owner is not None
        and not Membership.objects.filter(
            organization_id=record.organization_id, user_id=new_owner.pk, is_active=True
        ).exists()
    ):
        raise ValidationError({"owner": "The new owner must be an active member of this organization."})
    changed = 0
    for conversation in conversations_for_record(record).filter(is_current=True).order_by("pk"):
        conversation = _locked(conversation)
        if carry_over:
            if new_owner is None or conversation.owner_id == new_owner.pk:
                continue
            previous = conversation.owner_id
            changes = _set_owner(conversation, new_owner)
            _audit(
                conversation,
                actor,
                "carried_over",
                {**changes, "record": f"{record.record_type}:{record.pk}"},
            )
            clear_notifications(conversation)
            _move_unread(conversation, new_owner.pk)
            if new_owner.pk != getattr(actor, "pk", None):
                for n in notify(conversation, [new_owner.pk], Notification.Kind.ASSIGNED, None):
                    events.publish_notification_created(n)
            events.publish_conversation_updated(
                conversation, user_ids={new_owner.pk} | ({previous} if previous else set())
            )
        else:
            conversation.is_current = False
            conversation.status = Conversation.Status.ARCHIVED
            conversation.save(update_fields=["is_current", "status", "updated_at"])
            _audit(
                conversation,
                actor,
                "ended",
                {"record": f"{record.record_type}:{record.pk}", "carry_over": False},
            )
            clear_notifications(conversation)
            ConversationUserState.objects.filter(conversation=conversation).update(unread_count=0)
            events.publish_conversation_updated(
                conversation, user_ids=[u for u in (conversation.owner_id,) if u]
            )
        changed += 1
    return changed


def auto_archive_conversations(now: datetime | None = None) -> dict:
    """Archive open conversations with no traffic for the organization's ``auto_archive_days`` (off by
    default). A new message reopens them (``touch_conversation``). Returns {"organizations", "archived"}."""
    now = now or timezone.now()
    stats = {"organizations": 0, "archived": 0}
    for settings in InboxSettings.objects.filter(auto_archive_days__isnull=False, auto_archive_days__gt=0):
        cutoff = now - timedelta(days=settings.auto_archive_days)
        stale = Conversation.objects.filter(
            organization_id=settings.organization_id, status=Conversation.Status.OPEN
        ).filter(Q(last_message_at__lt=cutoff) | Q(last_message_at__isnull=True, created_at__lt=cutoff))
        stats["archived"] += stale.update(status=Conversation.Status.ARCHIVED, updated_at=now)
        stats["organizations"] += 1
    return stats


@transaction.atomic
def do_save_inbox_settings(org, actor, **fields) -> InboxSettings:
    """Create or change the organization's inbox settings (admin); audited."""
    allowed = {"session_timeout_minutes", "idle_timeout_minutes", "auto_archive_days", "agent_visibility"}
    settings, _ = InboxSettings.objects.get_or_create(organization=org)  # a refusal rolls it back
    changes = audit.save_changes(settings, fields, allowed, clean_exclude=["organization"])
    if changes:
        audit.record(org, actor, "inbox_settings.updated", settings, changes)
    if "agent_visibility" in changes:
        events.publish_visibility_changed(org.pk)
    return settings


@transaction.atomic
def do_reassign_conversation_as_system(conversation: Conversation, *, user_id: int) -> Conversation:
    """Give the conversation to a member on the organization's behalf (an automation's step): there is no
    acting member to check, only that the new owner is an active member of the organization."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        raise ValidationError({"user": "The user must be an active member of this organization."})
    return _reassign(_locked(conversation), None, user, None)
