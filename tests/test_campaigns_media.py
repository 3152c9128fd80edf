"""Pictures and files in campaign steps: uploaded and checked once, sent with every text of the step (MMS),
refused in plain words when they cannot go, invisible to other organizations."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from campaigns.drip import dispatcher
from campaigns.drip.models import CampaignMedia, CampaignRecipient, CampaignStep
from messaging.models import Message, MessageMedia
from messaging.services import delivery
from tests import factories_send
from tests.campaign_helpers import enroll, people

line = factories_send.line
fast_rates = factories_send.fast_rates

pytestmark = pytest.mark.django_db

NOON_NEW_YORK = datetime(2027, 6, 8, 16, 0, tzinfo=UTC)


def _upload(client, name="flyer.png", data=factories_send.PNG, content_type="image/png"):
    return client.post(
        "/api/v1/campaign-media", {"file": SimpleUploadedFile(name, data, content_type=content_type)}
    )


def _campaign(client, line, steps):
    payload = {
        "name": "Open house",
        "senders": [line.number.pk],
        "brand_name": "Acme",
        "window_clock": "campaign",
        "time_zone": "UTC",
        "window_start": "00:00",
        "window_end": "23:59",
        "steps": steps,
    }
    return client.post("/api/v1/campaigns", payload, format="json")


def test_a_step_sends_its_picture_with_every_text(alice_client, org_a, line, twilio_sandbox):
    uploaded = _upload(alice_client)
    assert uploaded.status_code == 201, uploaded.content
    media = uploaded.json()
    assert media["filename"] == "flyer.png" and media["content_type"] == "image/png"
    created = _campaign(
        alice_client,
        line,
        [
            {"body": "Acme: open house Saturday!", "media": [media["id"]]},
            {"body": "Acme: see you", "wait_minutes": 60},
        ],
    )
    assert created.status_code == 201, created.content
    assert created.json()["steps"][0]["media"] == [media["id"]]
    assert created.json()["steps"][1]["media"] == []
    campaign_id = created.json()["id"]
    from campaigns.drip.models import Campaign

    drip = Campaign.objects.get(pk=campaign_id)
    enroll(drip, people(2))
    assert alice_client.post(f"/api/v1/campaigns/{campaign_id}/start", {}, format="json").status_code == 200
    for person in CampaignRecipient.objects.filter(campaign=drip):
        assert dispatcher.send_step(person.pk, 0, now=NOON_NEW_YORK) == "sent"

    texts = list(Message.objects.filter(organization=org_a).order_by("pk"))
    assert len(texts) == 2 and all(t.num_media == 1 for t in texts)
    stored = CampaignMedia.objects.get(pk=media["id"])
    files = set(MessageMedia.objects.filter(message__in=texts).values_list("file", flat=True))
    assert files == {stored.file.name}  # one stored file, one row per text
    for text in texts:
        delivery.deliver(text.pk)
    at_twilio = factories_send.sandbox_messages(twilio_sandbox, line)
    assert len(at_twilio) == 2
    assert all(int(m["num_media"]) == 1 for m in at_twilio)


def test_an_attachment_that_cannot_go_by_mms_is_refused_with_the_reason(alice_client):
    refused = _upload(
        alice_client, name="setup.exe", data=b"MZ\x90\x00" + b"\x00" * 64, content_type="image/png"
    )
    assert refused.status_code == 400
    assert "setup.exe" in str(refused.json())
    assert not CampaignMedia.objects.exists()


def test_a_step_cannot_name_another_organizations_attachment(alice_client, bob_client, line):
    theirs = _upload(bob_client).json()
    created = _campaign(alice_client, line, [{"body": "Acme: hi", "media": [theirs["id"]]}])
    assert created.status_code == 400
    assert f"no attachment with id {theirs['id']}" in str(created.json())
    assert alice_client.get(f"/api/v1/campaign-media/{theirs['id']}").status_code == 404
    assert alice_client.get("/api/v1/campaign-media").json()["results"] == []


def test_a_campaign_with_pictures_cannot_start_on_a_number_that_cannot_send_them(alice_client, org_a, line):
    media = _upload(alice_client).json()
    created = _campaign(alice_client, line, [{"body": "Acme: hi", "media": [media["id"]]}]).json()
    from campaigns.drip.models import Campaign

    enroll(Campaign.objects.get(pk=created["id"]), people(1))
    line.number.mms_capable = False
    line.number.save(update_fields=["mms_capable"])
    started = alice_client.post(f"/api/v1/campaigns/{created['id']}/start", {}, format="json")
    assert started.status_code == 400
    assert "not MMS-capable" in str(started.json())


def test_an_admin_attaches_a_picture_to_a_step_in_the_builder(alice_client, org_a, line):
    form = {
        "name": "Open house",
        "brand_name": "Acme",
        "senders": [line.number.pk],
        "step1_body": "Acme: open house Saturday!",
        "step1_media": SimpleUploadedFile("flyer.png", factories_send.PNG, content_type="image/png"),
        "step2_body": "Acme: see you there",
        "step2_wait_days": "1",
        "window_clock": "campaign",
        "time_zone": "UTC",
        "window_start": "09:00",
        "window_end": "20:00",
        "days": ["0", "1", "2", "3", "4", "5", "6"],
    }
    response = alice_client.post("/settings/campaigns/new", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    first, second = CampaignStep.objects.order_by("position")
    (media,) = CampaignMedia.objects.filter(organization=org_a)
    assert first.media == [media.pk] and second.media == []
    page = alice_client.get(response["Location"])
    assert b"With flyer.png" in page.content


def test_a_refused_attachment_in_the_builder_keeps_nothing_and_says_why(alice_client, org_a, line):
    form = {
        "name": "Open house",
        "senders": [line.number.pk],
        "step1_body": "Acme: open house Saturday!",
        "step1_media": SimpleUploadedFile("notes.exe", b"MZ\x90\x00" + b"\x00" * 64),
        "window_start": "09:00",
        "window_end": "20:00",
    }
    response = alice_client.post("/settings/campaigns/new", form, follow=True)
    assert "Step 1&#x27;s attachment was not accepted" in response.content.decode()
    assert not CampaignMedia.objects.exists()
    from campaigns.drip.models import Campaign

    assert not Campaign.objects.filter(organization=org_a).exists()
