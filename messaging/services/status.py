"""Delivery status: the ONE forward-only status update every path uses (status callbacks, the stuck-message
poller, the send task).

Twilio's callbacks arrive out of order and more than once (FACTS.md), so a status only ever moves *up* the
rank table ``messaging.models.STATUS_RANK``; the update is a single conditional
``UPDATE … WHERE status_rank < new_rank`` (never read-modify-write), so two callbacks racing each other end
with the higher status whatever order their transactions commit in.

Same-rank rule: a status never replaces another of the same rank. The final statuses (delivered, undelivered,
failed, canceled, received) share rank 60, so the *first* final status that lands wins and a duplicate or a
contradicting late final callback changes nothing; only ``read`` (70) may still follow ``delivered``.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection, transaction
from django.db.models import Case, Exists, F, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from messaging.models import STATUS_RANK, Conversation, Message, MessageStatus
from messaging.signals import message_status_changed, send_after_commit
from messaging.twilio.errors import describe_code

# Statuses that mean the message left Twilio towards the carrier (sent_at is filled if it is still empty).
_SENT_OR_LATER = {
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.UNDELIVERED,
    MessageStatus.PARTIALLY_DELIVERED,
    MessageStatus.READ,
}
_FAILED = {MessageStatus.FAILED, MessageStatus.UNDELIVERED}


def twilio_status_word(value: str | None) -> str:
    """A status word as Twilio writes it in a webhook, an API answer or a listing, in our spelling:
    lower case, no surrounding spaces, ``partially-delivered`` → ``partially_delivered``. Not checked."""
    return (value or "").strip().lower().replace("-", "_")


def normalize_status(value: str | None, default: str | None = None) -> str | None:
    """The one reading of Twilio's status words: one of ours (``MessageStatus``), else ``default``."""
    word = twilio_status_word(value)
    return word if word in STATUS_RANK else default


def status_rank(status: str) -> int | None:
    """The rank of a Twilio status value (None for a value we do not know)."""
    return STATUS_RANK.get(status)


def apply_status(
    message_id: int | None,
    sid: str | None,
    status: str,
    *,
    error_code: int | None = None,
    at: datetime | None = None,
    organization_id: int | None = None,
    fast_commit: bool = False,
    row: Message | None = None,
) -> bool:
    """Move a message forward to ``status``; return whether it changed.

    The message is found by our id (``message_id``, from the ``m`` query parameter of the status callback
    URL, so a callback that beats the send response still finds its row) or else by Twilio's ``sid``. When
    both are given and the row has no SID yet, the SID is stored too (one statement with the status).

    Sets ``sent_at`` (first time it is sent or later), ``delivered_at`` / ``failed_at`` (from ``at``, default
    now), ``error_code`` with its plain-words ``error_message`` when Twilio gives a code, and the
    conversation's ``last_message_status`` when this is its last message. Sends ``message_status_changed``
    after commit. Unknown status values change nothing. ``organization_id`` (webhooks pass the verified
    account's) restricts the update to that organization's messages. ``row``: the message when the caller
    has it already (the send task), so its conversation and creation time, which never change, are not read
    again.
    """
    status = normalize_status(status)
    rank = STATUS_RANK.get(status)
    if rank is None or (message_id is None and not sid):
        return False
    at = at or timezone.now()

    rows = Message.objects.all()
    if organization_id is not None:
        rows = rows.filter(organization_id=organization_id)
    if message_id is not None:
        rows = rows.filter(pk=message_id)
        if sid:
            # Never attach the SID of another message to this row.
            rows = rows.filter(Q(sid=sid) | Q(sid__isnull=True))
    else:
        rows = rows.filter(sid=sid)

    changes = _changes(message_id, sid, status, rank, error_code, at)

    relaxed = fast_commit and connection.vendor == "postgresql" and not connection.in_atomic_block
    with transaction.atomic():
        if relaxed:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        changed = rows.filter(status_rank__lt=rank).update(**changes) > 0
        if not changed:
            if message_id is not None and sid:
                _store_sid(message_id, sid)
            return False
        _after_change(rows, row, message_id, status, error_code)
    return True


def _changes(message_id, sid, status: str, rank: int, error_code, at: datetime) -> dict:
    """The columns one status update writes (a single UPDATE; conditional expressions where it depends)."""
    changes: dict = {"status": status, "status_rank": rank, "updated_at": at}
    if message_id is not None and sid:
        # Store the SID if the row has none yet, unless another row holds it (never a unique violation that
        # would break a caller's transaction).
        taken = Exists(Message.objects.filter(sid=sid).exclude(pk=message_id))
        changes["sid"] = Case(When(taken, then=F("sid")), default=Coalesce(F("sid"), Value(sid)))
    if status in _SENT_OR_LATER:
        changes["sent_at"] = Coalesce(F("sent_at"), Value(at))
    if status in (MessageStatus.DELIVERED, MessageStatus.READ):
        changes["delivered_at"] = Coalesce(F("delivered_at"), Value(at))
    if status in _FAILED:
        changes["failed_at"] = at
    if error_code:
        changes["error_code"] = int(error_code)
        changes["error_message"] = describe_code(int(error_code))[:300]
    elif status in _FAILED:
        # Keep an error Twilio gave earlier (e.g. on the send request); otherwise say it failed.
        changes["error_message"] = Case(
            When(error_message="", then=Value(describe_code(None))), default=F("error_message")
        )
    return changes


def _after_change(rows, row: Message | None, message_id, status: str, error_code) -> None:
    """The conversation's last status, and ``message_status_changed`` after commit."""
    if row is not None and row.pk == message_id:
        msg = {
            "id": row.pk,
            "conversation_id": row.conversation_id,
            "organization_id": row.organization_id,
            "created_at": row.created_at,
        }
    else:
        found = rows.values("id", "conversation_id", "organization_id", "created_at")[:1]
        msg = found[0] if found else None
    if msg is None:  # pragma: no cover - the row we just updated
        return
    # The conversation shows its last message's status: only when this message is that last one.
    Conversation.objects.filter(pk=msg["conversation_id"], last_message_at=msg["created_at"]).update(
        last_message_status=status
    )
    send_after_commit(
        message_status_changed,
        message_id=msg["id"],
        conversation_id=msg["conversation_id"],
        organization_id=msg["organization_id"],
        status=status,
        error_code=int(error_code) if error_code else None,
    )


def _store_sid(message_id: int, sid: str) -> None:
    """Attach Twilio's SID to our row if it has none yet (a stale callback may still carry it first)."""
    Message.objects.filter(pk=message_id, sid__isnull=True).exclude(
        Exists(Message.objects.filter(sid=sid))
    ).update(sid=sid)
