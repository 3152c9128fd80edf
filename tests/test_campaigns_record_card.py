"""A record's page shows the campaigns its person is in: each step they got, with its delivery status, and
what comes next; another organization's campaigns never show."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from campaigns.drip import dispatcher
from campaigns.drip.models import CampaignRecipient
from tests import factories_send

line = factories_send.line
fast_rates = factories_send.fast_rates

pytestmark = pytest.mark.django_db

NOON_NEW_YORK = datetime(2027, 6, 8, 16, 0, tzinfo=UTC)


def test_a_records_page_shows_each_campaign_step_it_got_and_whats_next(
    alice_client, org_a, org_b, alice, bob, line
):
    from campaigns.drip.services import add_recipients, do_start_campaign
    from tests.campaign_helpers import campaign
    from tests.factories_crm import LeadFactory

    lead = LeadFactory(organization=org_a, mobile_phone="+12125550188")
    drip = campaign(
        org_a, alice, [line.number], steps=[{"body": "Acme: hi"}, {"body": "Acme: again", "wait_minutes": 60}]
    )
    add_recipients(drip, [{"phone": "+12125550188", "record_type": "lead", "record_id": lead.pk}])
    do_start_campaign(drip, alice)
    person = CampaignRecipient.objects.get(campaign=drip)
    assert dispatcher.send_step(person.pk, 0, now=NOON_NEW_YORK) == "sent"
    # Another organization's campaign to the same number is none of Acme's business.
    from tests.factories_messaging import PhoneNumberFactory

    theirs = campaign(org_b, bob, [PhoneNumberFactory(account__organization=org_b)], name="Globex promo")
    add_recipients(theirs, [{"phone": "+12125550188"}])

    page = alice_client.get(lead.get_absolute_url()).content.decode()
    assert "Campaigns</h2>" in page and "Spring sale" in page and "In progress" in page
    assert "1 of 2 steps sent" in page and "Step 1: sent" in page
    assert "Next step 2:" in page
    assert "Globex promo" not in page


def test_a_record_in_no_campaign_shows_no_campaigns_card(alice_client, org_a):
    from tests.factories_crm import LeadFactory

    lead = LeadFactory(organization=org_a)
    assert "Campaigns</h2>" not in alice_client.get(lead.get_absolute_url()).content.decode()
