"""Times are shown in the organization's time zone, not the browser's: pages render theirs in it, the page
tells its scripts (``<body data-time-zone>``) and the texting widget's context carries it; the API keeps
answering in UTC."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crm.models import Lead
from tenancy.models import AuditLog

pytestmark = pytest.mark.django_db


@pytest.fixture
def new_york(org_a):
    org_a.time_zone = "America/New_York"
    org_a.save()
    return org_a


def test_pages_render_times_in_the_organizations_zone(new_york, alice, alice_client):
    entry = AuditLog.objects.create(organization=new_york, actor=alice, action="test.done", object_repr="x")
    AuditLog.objects.filter(pk=entry.pk).update(created_at=datetime(2026, 7, 1, 15, 30, tzinfo=UTC))
    page = alice_client.get("/settings/audit/").content.decode()
    assert "2026-07-01 11:30:00" in page  # 15:30 UTC is 11:30 in New York (EDT)
    assert 'data-time-zone="America/New_York"' in page


def test_the_api_still_answers_in_utc(new_york, alice, alice_client):
    lead = Lead.objects.create(organization=new_york, first_name="Jane", last_name="Doe", owner=alice)
    Lead.objects.filter(pk=lead.pk).update(created_at=datetime(2026, 7, 1, 15, 30, tzinfo=UTC))
    item = alice_client.get(f"/api/v1/leads/{lead.pk}").json()
    assert item["created_at"].startswith("2026-07-01T15:30:00")
    assert item["created_at"].endswith(("Z", "+00:00"))


def test_the_texting_context_carries_the_time_zone(new_york, alice, alice_client):
    lead = Lead.objects.create(organization=new_york, first_name="Jane", last_name="Doe", owner=alice)
    context = alice_client.get(f"/api/v1/texting?record_type=lead&record_id={lead.pk}").json()
    assert context["time_zone"] == "America/New_York"


def test_each_organization_sees_its_own_zone(new_york, org_b, bob_client):
    org_b.time_zone = "Europe/London"
    org_b.save()
    assert 'data-time-zone="Europe/London"' in bob_client.get("/inbox/").content.decode()
