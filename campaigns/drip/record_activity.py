"""The "Campaigns" card of a record's page: every campaign of the organization this person is in (linked to
the record, or texted at one of its numbers), where they are, and each step sent with its delivery status."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Count, Q
from django.template.loader import render_to_string

from campaigns.drip.models import CampaignRecipient, CampaignSend, CampaignStep
from crm.record_panels import phone_numbers

SHOWN = 10  # campaigns on the card, newest first


def campaigns_card(request, record) -> str:
    org = getattr(request, "org", None)
    if org is None:
        return ""
    numbers = phone_numbers(record)
    linked = Q(record_type=record.record_type, record_id=record.pk)
    people = list(
        CampaignRecipient.objects.filter(
            Q(phone__in=numbers) | linked if numbers else linked, organization=org
        )
        .select_related("campaign")
        .order_by("-id")[:SHOWN]
    )
    if not people:
        return ""
    sends = defaultdict(list)
    for send in (
        CampaignSend.objects.filter(organization=org, recipient__in=people)
        .select_related("message")
        .order_by("step_index")
    ):
        sends[send.recipient_id].append(send)
    steps = dict(
        CampaignStep.objects.filter(campaign_id__in={p.campaign_id for p in people})
        .values("campaign_id")
        .annotate(n=Count("id"))
        .values_list("campaign_id", "n")
    )
    rows = [
        {
            "person": person,
            "campaign": person.campaign,
            "sends": sends[person.pk],
            "steps": steps.get(person.campaign_id),
            "active": person.status in CampaignRecipient.ACTIVE,
        }
        for person in people
    ]
    is_admin = getattr(getattr(request, "membership", None), "is_admin", False)
    return render_to_string(
        "campaigns/drip/_record_activity.html",
        {"rows": rows, "is_admin": is_admin, "zone": org.time_zone or "UTC"},
        request=request,
    )
