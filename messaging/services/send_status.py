"""Stand-in for RECEIVE's ``messaging.services.status.apply_status`` until that branch is merged.

Same signature and the same semantics (one conditional ``UPDATE … WHERE status_rank < new_rank``, the SID
attached when the row has none). ``messaging.tasks.sending`` imports the real one when it exists, so this
module can be deleted once ``receive`` is merged.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from messaging.models import STATUS_RANK, Conversation, Message, MessageStatus
from messaging.signals import message_status_changed, send_after_commit
from messaging.twilio_errors import describe_code

_SENT_OR_LATER = {"sent", "delivered", "undelivered", "partially_delivered", "read"}
_FAILED = {MessageStatus.FAILED, MessageStatus.UNDELIVERED}


def apply_status(
    message_id: int | None,
    sid: str | None,
    status: str,
    *,
    error_code: int | None = None,
    at: datetime | None = None,
) -> bool:
    rank = STATUS_RANK.get(status)
    if rank is None or (message_id is None and not sid):
        return False
    at = at or timezone.now()
    rows = (
        Message.objects.filter(pk=message_id) if message_id is not None else Message.objects.filter(sid=sid)
    )
    if message_id is not None and sid:
        rows = rows.filter(Q(sid=sid) | Q(sid__isnull=True))
    changes: dict = {"status": status, "status_rank": rank, "updated_at": at}
    if message_id is not None and sid:
        changes["sid"] = Coalesce(F("sid"), Value(sid))
    if status in _SENT_OR_LATER:
        changes["sent_at"] = Coalesce(F("sent_at"), Value(at))
    if status in (MessageStatus.DELIVERED, MessageStatus.READ):
        changes["delivered_at"] = Coalesce(F("delivered_at"), Value(at))
    if status in _FAILED:
        changes["failed_at"] = at
    if error_code:
        changes["error_code"] = int(error_code)
        changes["error_message"] = describe_code(int(error_code))[:300]
    with transaction.atomic():
        changed = rows.filter(status_rank__lt=rank).update(**changes) > 0
        if not changed:
            if message_id is not None and sid:
                try:
                    with transaction.atomic():
                        Message.objects.filter(pk=message_id, sid__isnull=True).update(sid=sid)
                except IntegrityError:
                    pass
            return False
        msg = rows.values("id", "conversation_id", "organization_id", "created_at").first()
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
    return True
