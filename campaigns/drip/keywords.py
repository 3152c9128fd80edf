"""Keyword opt-in: someone texts a number's keyword (JOIN). We record their consent in the ledger, answer
with a CTIA-complete confirmation, create or update their lead, and enroll them in the linked campaign."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from campaigns import quiet_hours
from campaigns.drip.models import Campaign, CampaignRecipient, KeywordOptIn
from campaigns.drip.services import add_recipients
from crm.services import do_create_record, find_records_by_phone
from messaging.models import ConsentEvent, Message
from messaging.services.consent import do_change_consent
from messaging.services.sending import SendRefused, do_send_message


def confirmation(optin: KeywordOptIn) -> str:
    """Brand, frequency, rates, HELP and STOP: what CTIA asks of an opt-in confirmation."""
    return (
        f"{optin.brand}: you're subscribed. {optin.frequency}. Msg & data rates may apply. "
        "Reply HELP for help, STOP to cancel."
    )


def organizations_with_optins(organization_ids: set[int]) -> set[int]:
    """Which of these organizations have a keyword opt-in at all (one query): the others' texts skip it."""
    if not organization_ids:
        return set()
    return set(
        KeywordOptIn.objects.filter(organization_id__in=organization_ids)
        .values_list("organization_id", flat=True)
        .distinct()
    )


def handle_keyword(message: Message) -> bool:
    """True when the text was a keyword opt-in of its number (and was handled)."""
    word = (message.body or "").strip().upper()
    if not word or " " in word:
        return False
    conversation = message.conversation
    optin = (
        KeywordOptIn.objects.select_related("campaign", "number")
        .filter(organization_id=message.organization_id, number_id=conversation.phone_number_id, keyword=word)
        .first()
    )
    if optin is None:
        return False
    org = message.organization
    phone = conversation.customer_number
    with transaction.atomic():
        do_change_consent(
            org, phone, ConsentEvent.Action.OPT_IN, ConsentEvent.Method.KEYWORD, message=message, keyword=word
        )
        records = [r for r in find_records_by_phone(org, phone) if r.record_type in ("lead", "contact")]
        record = records[0] if records else None
        if record is None:
            record = do_create_record(
                org, None, "lead", {"last_name": phone, "mobile_phone": phone, "status": "new"}
            )
        elif record.record_type == "lead" and not record.allow_sms:
            record.allow_sms = True
            record.save(update_fields=["allow_sms", "updated_at"])
        try:
            do_send_message(
                org,
                source=Message.Source.AUTO_REPLY,
                conversation=conversation,
                body=confirmation(optin),
                idempotency_key=f"keyword-optin-{message.pk}",
                source_label=optin.campaign.name if optin.campaign else "",
            )
        except SendRefused:
            pass  # blocked or do-not-contact: they get nothing, and are not enrolled below
        else:
            _enroll(optin.campaign, record, phone)
    return True


def _enroll(campaign: Campaign | None, record, phone: str) -> None:
    if campaign is None or campaign.status in (Campaign.Status.COMPLETED, Campaign.Status.CANCELED):
        return
    row = {
        "phone": phone,
        "record_type": record.record_type,
        "record_id": record.pk,
        "time_zone": quiet_hours.record_time_zone(record),
    }
    add_recipients(campaign, [row])
    if campaign.status == Campaign.Status.RUNNING:
        CampaignRecipient.objects.filter(campaign=campaign, phone=phone, next_at__isnull=True).update(
            next_at=timezone.now()
        )
