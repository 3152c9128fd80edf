"""What inbound texts and consent changes do to campaigns: a reply stops the person (when the campaign says
so), an opt-out always does, and a keyword opt-in (JOIN) enrolls them. Connected in ``CampaignsConfig``."""

from __future__ import annotations

from django.db import transaction

from campaigns.drip import keywords
from campaigns.drip.services import note_opt_out, note_replies, note_reply
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


def on_inbound_texts(message_ids: list[int]) -> dict:
    """``on_inbound_text`` for a batch, set-based: the texts read in one query, keyword opt-ins looked up once
    per organization, and the replies noted with one UPDATE per organization. A text that is a keyword
    opt-in is handled (and not counted as a reply) as alone. Idempotent: a retried batch stops nobody twice
    and sends no confirmation twice."""
    messages = list(
        Message.objects.select_related("conversation", "organization")
        .filter(pk__in=message_ids, direction=Message.Direction.INBOUND)
        .order_by("id")
    )
    joined, replies = 0, {}
    optin_orgs = keywords.organizations_with_optins({m.organization_id for m in messages})
    for message in messages:
        if message.organization_id in optin_orgs and keywords.handle_keyword(message):
            joined += 1
            continue
        replies.setdefault(message.organization_id, set()).add(message.conversation.customer_number)
    stopped = sum(note_replies(org_id, phones) for org_id, phones in replies.items())
    return {"texts": len(messages), "stopped": stopped, "joined": joined}


def inbound_text_receiver(sender, message_id: int, **kwargs) -> None:
    # One task per batch of stored texts (``quicksend.queue.coalesce``), else one per text.
    transaction.on_commit(lambda: enqueue_item("campaigns.tasks.campaign_inbound_texts", message_id))


def consent_receiver(sender, organization_id: int, phone_number: str, action: str, **kwargs) -> None:
    if action in (ConsentEvent.Action.OPT_OUT, ConsentEvent.Action.DO_NOT_CONTACT, ConsentEvent.Action.BLOCK):
        note_opt_out(organization_id, phone_number)
