"""A campaign's page: "Start at" schedules it for a local date and time on the organization's clock (the
dispatcher starts it then); a past or missing time is refused with what to fix; other organizations get
404."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from campaigns.drip.models import Campaign
from tests.campaign_helpers import campaign, enroll, people
from tests.factories_messaging import PhoneNumberFactory, TwilioAccountFactory
from tests.page_checks import check_page

pytestmark = pytest.mark.django_db


@pytest.fixture
def drip(org_a, alice):
    org_a.time_zone = "America/Chicago"
    org_a.save(update_fields=["time_zone"])
    number = PhoneNumberFactory(account=TwilioAccountFactory(organization=org_a))
    # Two steps an hour apart: the first step's texts never finish the campaign in the tick that starts it
    # (where tasks run in place, a one-step campaign whose texts are stored at once would be completed).
    steps = [{"body": "Acme: open house Saturday"}, {"body": "Acme: see you there", "wait_minutes": 60}]
    drip = campaign(org_a, alice, [number], steps=steps)
    enroll(drip, people(2))
    return drip


def _schedule(client, drip, value):
    return client.post(f"/settings/campaigns/{drip.pk}/schedule", {"start_at": value}, follow=True)


def test_start_at_schedules_the_campaign_on_the_organizations_clock(alice_client, drip):
    local = (
        (timezone.now() + timedelta(days=2))
        .astimezone(ZoneInfo("America/Chicago"))
        .replace(hour=9, minute=30, second=0, microsecond=0)
    )
    answer = _schedule(alice_client, drip, local.strftime("%Y-%m-%dT%H:%M"))
    page = answer.content.decode()
    assert "The campaign starts on" in page and "(America/Chicago)" in page
    drip.refresh_from_db()
    assert drip.status == Campaign.Status.SCHEDULED
    assert drip.start_at == local
    assert "Starts on" in page and "09:30" in page and "Reschedule" in page


@pytest.mark.parametrize(
    "value,expected", [("", "Pick the date and time"), ("2020-01-01T09:00", "in the future")]
)
def test_a_missing_or_past_start_is_refused_and_the_campaign_stays_a_draft(
    alice_client, drip, value, expected
):
    answer = _schedule(alice_client, drip, value)
    assert expected in answer.content.decode()
    drip.refresh_from_db()
    assert drip.status == Campaign.Status.DRAFT and drip.start_at is None


def test_another_organization_cannot_schedule_it_and_an_agent_cannot_either(bob_client, aaron_client, drip):
    future = (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert bob_client.post(f"/settings/campaigns/{drip.pk}/schedule", {"start_at": future}).status_code == 404
    assert (
        aaron_client.post(f"/settings/campaigns/{drip.pk}/schedule", {"start_at": future}).status_code == 403
    )
    drip.refresh_from_db()
    assert drip.status == Campaign.Status.DRAFT


def test_the_dispatcher_starts_a_scheduled_campaign_when_its_time_comes(alice_client, drip, monkeypatch):
    from campaigns.drip import dispatcher

    # Only the start is looked at here: the texts it releases are stored, not handed to a Twilio this test
    # does not run (tasks run in place in embedded mode, and would retry an unreachable Twilio for minutes).
    monkeypatch.setattr(dispatcher, "deliver_due", lambda deliveries: None)

    start = (timezone.now() + timedelta(hours=3)).astimezone(ZoneInfo("America/Chicago"))
    _schedule(alice_client, drip, start.strftime("%Y-%m-%dT%H:%M"))
    dispatcher.dispatch(timezone.now())
    drip.refresh_from_db()
    assert drip.status == Campaign.Status.SCHEDULED
    dispatcher.dispatch(start.replace(second=0, microsecond=0) + timedelta(minutes=1))
    drip.refresh_from_db()
    assert drip.status == Campaign.Status.RUNNING
    assert isinstance(drip.started_at, datetime)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_admin_schedules_a_draft_in_the_browser(page, asgi_server, org_a, alice, drip):
    from playwright.sync_api import expect

    from tenancy.models import Role
    from tests.factories import PASSWORD, MembershipFactory

    MembershipFactory(organization=org_a, role=Role.ADMIN, user__username="ada")
    base = asgi_server.base_url
    page.goto(base + "/login/")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)
    page.goto(f"{base}/settings/campaigns/{drip.pk}")
    when = (timezone.now() + timedelta(days=3)).astimezone(ZoneInfo("America/Chicago"))
    page.get_by_label("Start at (America/Chicago)").fill(when.strftime("%Y-%m-%dT10:15"))
    page.get_by_role("button", name="Schedule").click()
    expect(page.get_by_test_id("starts-at")).to_contain_text("10:15 (America/Chicago time)")
    drip.refresh_from_db()
    assert drip.status == Campaign.Status.SCHEDULED
    check_page(page, "campaign-scheduled")
