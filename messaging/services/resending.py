"""Sending a failed text again, attachments included ("Retry" under a failed message).

The retry is a new message through the one send path (``do_send_message``: opt-out, blocked, do-not-contact,
compliance, throttle) with the failed one's text and its attachments read back from storage, under an
idempotency key derived from the failed message, so a second click (or a second tab) returns the first retry
instead of sending again.
"""

from __future__ import annotations

import os

from messaging.media.validation import MediaFile
from messaging.models import FAILED_STATUSES, Message
from messaging.services.sending import SendRefused, do_send_message
from tenancy.models import Membership


def retry_key(message: Message) -> str:
    return f"retry-{message.pk}"


def stored_media(message: Message) -> list[MediaFile]:
    """The message's attachments as files to send again. One that was never stored cannot be: refused."""
    files = []
    for item in message.media.all():
        if not item.file:
            name = item.filename or "An attachment"
            raise SendRefused(
                f"{name} of this text was not stored, so it cannot be sent again.", field="media"
            )
        with item.file.open("rb") as stored:
            data = stored.read()
        files.append(MediaFile(item.filename or os.path.basename(item.file.name), data, item.content_type))
    return files


def do_retry_message(
    message: Message, *, actor, membership: Membership, from_number: int | str | None = None
) -> Message:
    """Send ``message`` (outbound, failed or not delivered) again as ``actor``, with its text and its
    attachments, from ``from_number`` (default: its conversation's number). Returns the new message (or the
    first retry, when this one was retried already)."""
    if message.direction != Message.Direction.OUTBOUND or message.status not in FAILED_STATUSES:
        raise SendRefused("Only a text that was not delivered can be sent again.", field="")
    conversation = message.conversation
    return do_send_message(
        conversation.organization,
        actor=actor,
        membership=membership,
        source=Message.Source.API,
        conversation=conversation,
        from_number=from_number or conversation.phone_number,
        body=message.body,
        media=stored_media(message),
        idempotency_key=retry_key(message),
    )
