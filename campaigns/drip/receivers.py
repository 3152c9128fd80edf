"""What inbound texts and consent changes do to campaigns: a reply stops the person (when the campaign says
so), an opt-out always does, and a keyword opt-in (JOIN) enrolls them. Connected in ``CampaignsConfig``."""

from __future__ import annotations

from django.db import transaction

from campaigns.drip import keywords
from campaigns.drip.services import note_opt_out, note_reply
from messaging.models import ConsentEvent, Message
from quicksend.queue import enqueue_item


def on_inbound_text(message_id: int) -> dict:
    message = (
        Message.objects.select_related("conversation", "organization")
        .filter(pk=message_id, direction=Message.Direction.INBOUND)
        .first()
    )
    if message is None:
        return {"skipped": "no such inbound text"}
    joined = keywords.handle_keyword(message)
    stopped = 0 if joined else note_reply(message.organization_id, message.conversation.customer_number)
    return {"stopped": stopped, "joined": joined}


def inbound_text_receiver(sender, message_id: int, **kwargs) -> None:
    # One task per batch of stored texts (``quicksend.queue.coalesce``), else one per text.
    transaction.on_commit(lambda: enqueue_item("campaigns.tasks.campaign_inbound_texts", message_id))


def consent_receiver(sender, organization_id: int, phone_number: str, action: str, **kwargs) -> None:
    if action in (ConsentEvent.Action.OPT_OUT, ConsentEvent.Action.DO_NOT_CONTACT, ConsentEvent.Action.BLOCK):
        note_opt_out(organization_id, phone_number)
