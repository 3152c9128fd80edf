"""The one realtime publisher (GUIDE §3.7).

Services call ``publish(...)`` with explicit recipients; frames go out after the transaction commits, so a
client never hears of a row it cannot yet read. Groups: ``user.<id>`` (a user's own events) and
``conv.<id>`` (events of one conversation, joined only after a visibility check).
"""

from __future__ import annotations

from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def conversation_group(conversation_id: int) -> str:
    return f"conv.{conversation_id}"


def publish(
    event_type: str,
    payload: dict,
    *,
    user_ids: Iterable[int] = (),
    conversation_ids: Iterable[int] = (),
) -> None:
    """Send a typed event to the given users and conversation groups once the current transaction commits."""
    groups = [user_group(u) for u in user_ids] + [conversation_group(c) for c in conversation_ids]
    if not groups:
        return
    frame = {"type": "quicksend.event", "event": {"type": event_type, **payload}}

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        for group in groups:
            async_to_sync(layer.group_send)(group, frame)

    transaction.on_commit(send)
