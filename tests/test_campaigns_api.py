"""The campaigns API: build, fill from a CSV or CRM records, pre-flight, start/pause/resume/cancel, results
and export; another organization sees none of it."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from campaigns.drip.models import Campaign, CampaignRecipient, KeywordOptIn, SenderRate
from crm.models import Lead
from messaging.services.consent import do_change_consent
from tests import factories_send

line = factories_send.line
fast_rates = factories_send.fast_rates

pytestmark = pytest.mark.django_db

CSV = (
    "Phone,First Name,City\n"
    "(212) 555-0101,Kim,NYC\n"
    "+1 212 555 0102,Lee,\n"
    "not a number,Max,LA\n"
    "212-555-0101,Kim again,NYC\n"
    "+12125550103,Opted,Out\n"
    "+442079460000,Lon,Don\n"
)


def _create(client, line, **extra):
    payload = {
        "name": "Spring sale",
        "senders": [line.number.pk],
        "brand_name": "Acme",
        "steps": [
            {"body": "Acme: hi {{First Name|default:'there'}}!"},
            {"body": "Acme: last day {{City}}", "wait_minutes": 1440},
        ],
        **extra,
    }
    response = client.post("/api/v1/campaigns", payload, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_admin_builds_imports_checks_and_starts_a_campaign(alice_client, org_a, line):
    created = _create(alice_client, line)
    assert created["status"] == "draft" and created["steps"][1]["wait_minutes"] == 1440
    assert created["warnings"] == []
    do_change_consent(org_a, "+12125550103", "opt_out", "keyword", keyword="STOP")
    upload = SimpleUploadedFile("people.csv", CSV.encode(), content_type="text/csv")
    refused = alice_client.post(
        f"/api/v1/campaigns/{created['id']}/import",
        {"file": upload, "phone_column": "Phone", "attested": False},
    )
    assert refused.status_code == 400 and "opt-in" in refused.json()["detail"]
    upload.seek(0)
    imported = alice_client.post(
        f"/api/v1/campaigns/{created['id']}/import",
        {"file": upload, "phone_column": "Phone", "attested": True},
    )
    assert imported.status_code == 201, imported.content
    report = imported.json()
    assert report["added"] == 2  # Kim and Lee
    assert report["counts"] == {"invalid": 1, "duplicate": 1, "opted_out": 1, "landline": 1}
    assert [r["row"] for r in report["rejected"]] == [4, 5, 7, 6]  # the London number is a landline
    kim = CampaignRecipient.objects.get(phone="+12125550101")
    assert kim.merge == {"First Name": "Kim", "City": "NYC"} and kim.sender_id == line.number.pk
    assert kim.time_zone == "America/New_York"

    preflight = alice_client.get(f"/api/v1/campaigns/{created['id']}/preflight").json()
    assert preflight["sendable"] == 2 and preflight["invalid"] == 1 and preflight["opted_out"] == 1
    assert preflight["duplicate"] == 1 and preflight["landline"] == 1
    assert preflight["missing_merge_field"] == 1  # Lee has no City
    assert preflight["total_segments"] == 4 and preflight["estimated_cost"] > 0
    assert preflight["estimated_seconds"] >= 1440 * 60

    started = alice_client.post(f"/api/v1/campaigns/{created['id']}/start", {}, format="json")
    assert started.json()["status"] == "running"
    assert alice_client.post(f"/api/v1/campaigns/{created['id']}/pause").json()["status"] == "paused"
    assert alice_client.post(f"/api/v1/campaigns/{created['id']}/resume").json()["status"] == "running"
    again = alice_client.post(f"/api/v1/campaigns/{created['id']}/start", {}, format="json")
    assert again.status_code == 409
    results = alice_client.get(f"/api/v1/campaigns/{created['id']}/results").json()
    assert results["people"] == 2 and results["by_status"]["pending"] == 2 and results["series"] == []
    people = alice_client.get(f"/api/v1/campaigns/{created['id']}/recipients?outcome=pending").json()
    assert len(people["results"]) == 2
    export = alice_client.get(f"/api/v1/campaigns/{created['id']}/export")
    assert export["Content-Type"] == "text/csv" and export.content.decode().count("\n") == 3
    assert alice_client.post(f"/api/v1/campaigns/{created['id']}/cancel").json()["status"] == "canceled"


def test_a_first_message_without_the_brand_is_flagged(alice_client, line):
    created = _create(alice_client, line, steps=[{"body": "Big sale today"}])
    assert created["warnings"] == ["The first message does not mention “Acme”: say who is texting in it."]


def test_records_are_added_picked_or_by_filter(alice_client, org_a, alice, line):
    created = _create(alice_client, line)
    new = Lead.objects.create(organization=org_a, first_name="A", mobile_phone="+12125550111", status="new")
    Lead.objects.create(organization=org_a, first_name="B", mobile_phone="+12125550112", status="qualified")
    Lead.objects.create(organization=org_a, first_name="C", mobile_phone="", status="new")
    picked = alice_client.post(
        f"/api/v1/campaigns/{created['id']}/records",
        {"records": [{"type": "lead", "id": new.pk}]},
        format="json",
    )
    assert picked.json()["added"] == 1
    by_filter = alice_client.post(
        f"/api/v1/campaigns/{created['id']}/records",
        {"filter": {"record_type": "lead", "status": "new"}},
        format="json",
    ).json()
    assert by_filter["added"] == 0 and by_filter["counts"]["duplicate"] == 1
    assert by_filter["counts"]["not_textable"] == 1  # C has no number


def test_sender_rates_and_keywords_are_admin_settings(alice_client, org_a, line):
    rate = alice_client.post(
        "/api/v1/campaign-sender-rates", {"number": line.number.pk, "segments_per_second": 10}, format="json"
    )
    assert rate.status_code == 201 and SenderRate.objects.get().segments_per_second == 10
    created = _create(alice_client, line)
    keyword = alice_client.post(
        "/api/v1/keyword-optins",
        {"number": line.number.pk, "keyword": "join", "campaign": created["id"], "brand": "Acme"},
        format="json",
    )
    assert keyword.status_code == 201 and KeywordOptIn.objects.get().keyword == "JOIN"
    stop = alice_client.post(
        "/api/v1/keyword-optins",
        {"number": line.number.pk, "keyword": "STOP", "brand": "Acme"},
        format="json",
    )
    assert stop.status_code == 400


def test_another_organization_sees_no_campaign(alice_client, bob_client, line):
    created = _create(alice_client, line)
    assert bob_client.get(f"/api/v1/campaigns/{created['id']}").status_code == 404
    assert bob_client.post(f"/api/v1/campaigns/{created['id']}/start").status_code == 404
    assert bob_client.get("/api/v1/campaigns").json()["results"] == []
    refused = bob_client.post(
        "/api/v1/campaigns",
        {"name": "x", "senders": [line.number.pk], "steps": [{"body": "x"}]},
        format="json",
    )
    assert refused.status_code == 400 and not Campaign.objects.filter(name="x").exists()


def test_agents_cannot_run_campaigns(aaron_client, line):
    assert aaron_client.get("/api/v1/campaigns").status_code == 403
