"""The parts of the one message shape (REST thread item, live ``message.created``) that are not plain
columns: who sent it, its attachments with the address a signed-in member opens them at, and whether an
inbound text revokes consent in free words. ``inbox.api.serializers.message_items`` and
``inbox.events.message_payload`` both build a message from these, so the thread renders the same JSON
whichever way it arrived."""

from __future__ import annotations

from collections.abc import Iterable

from django.urls import reverse

from messaging.models import Message, MessageMedia
from messaging.services.consent_revocation import revokes_consent

MEDIA_FIELDS = ("id", "message_id", "content_type", "filename", "size", "file", "error")


def sender_name(first_name: str | None, last_name: str | None, username: str | None) -> str:
    """The agent's full name, else their username ('' for a message no person sent)."""
    full = f"{first_name or ''} {last_name or ''}".strip()
    return full or (username or "")


def media_item(row: dict) -> dict:
    """An attachment from a row of ``MEDIA_FIELDS``."""
    return {
        "id": row["id"],
        "content_type": row["content_type"],
        "filename": row["filename"],
        "size": row["size"],
        "url": reverse("message-media", args=[row["id"]]) if row["file"] else None,
        "error": row["error"],
    }


def media_by_message(message_ids: Iterable[int]) -> dict[int, list[dict]]:
    """message id → its attachments, in one query (none when no id is given)."""
    ids = list(message_ids)
    found: dict[int, list[dict]] = {}
    if not ids:
        return found
    for row in MessageMedia.objects.filter(message_id__in=ids).order_by("id").values(*MEDIA_FIELDS):
        found.setdefault(row["message_id"], []).append(media_item(row))
    return found


def consent_revocation(direction: str, body: str) -> bool:
    """True for an inbound text asking, in words rather than a keyword, to stop being texted."""
    return direction == Message.Direction.INBOUND and revokes_consent(body)
