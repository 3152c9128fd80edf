"""What an agent's home shows of their inbox: open conversations they own, unread texts, failed sends."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from messaging.inbox import events
from messaging.inbox.visibility import visible_conversations
from messaging.models import FAILED_STATUSES, Conversation, Message
from tenancy.models import Membership

FAILED_WINDOW = timedelta(days=7)


def workspace_summary(membership: Membership, limit: int = 5) -> dict:
    """Counts and the few newest open conversations the member owns (four small queries)."""
    visible = visible_conversations(membership)
    mine = visible.filter(owner_id=membership.user_id, status=Conversation.Status.OPEN, is_current=True)
    since = timezone.now() - FAILED_WINDOW
    failed = Message.objects.filter(
        organization_id=membership.organization_id,
        direction=Message.Direction.OUTBOUND,
        status__in=FAILED_STATUSES,
        created_at__gte=since,
        conversation__in=visible.values("pk"),
    )
    return {
        "open_count": mine.count(),
        "unread_total": events.unread_total(membership.user_id, membership.organization_id),
        "failed_count": failed.count(),
        "recent": list(
            mine.exclude(last_message_at__isnull=True)
            .select_related("phone_number")
            .order_by("-last_message_at")[:limit]
        ),
    }
