"""Templates in messaging: the preview of a template on a record, the send API's record payloads. (The
renderer: tests/test_templates_rendering.py; the templates API and its rules: tests/test_templates_api.py.)"""

from __future__ import annotations

import pytest

from templates_app.models import MessageTemplate
from tests.factories_crm import LeadFactory

URL = "/api/v1/templates"


def test_template_with_unknown_merge_field_is_400(alice_client):
    response = alice_client.post(
        URL, {"name": "x", "body": "Hi {{frist_name}}", "record_type": "lead"}, format="json"
    )
    assert response.status_code == 400 and "frist_name" in response.json()["body"][0]


def test_outsider_gets_404_on_templates(alice_client, bob_client, org_a):
    template_id = alice_client.post(URL, {"name": "t", "body": "b"}, format="json").json()["id"]
    assert bob_client.get(f"{URL}/{template_id}").status_code == 404
    assert bob_client.delete(f"{URL}/{template_id}").status_code == 404
    assert bob_client.get(URL).json()["results"] == []


def test_preview_renders_a_template_for_a_record(alice, alice_client, bob_client, org_a):
    lead = LeadFactory(organization=org_a, first_name="Zoé", last_name="Q")
    template = MessageTemplate.objects.create(
        organization=org_a, name="t", body="Hi {{first_name}} {{company}}"
    )
    payload = {"template": template.pk, "record": {"type": "lead", "id": lead.pk}}
    data = alice_client.post("/api/v1/messages/preview", payload, format="json").json()
    assert data["body"] == "Hi Zoé " and data["encoding"] == "GSM-7" and data["segments"] == 1
    assert data["missing_fields"] == ["company"]
    assert bob_client.post("/api/v1/messages/preview", payload, format="json").status_code == 404


@pytest.mark.parametrize(
    "record",
    [{"type": "lead", "id": "twelve"}, {"type": "boat", "id": 1}, {"type": "lead"}, "nonsense", 12],
)
def test_preview_refuses_a_malformed_record_in_plain_words(alice_client, org_a, record):
    template = MessageTemplate.objects.create(organization=org_a, name="t", body="Hi {{first_name}}")
    payload = {"template": template.pk, "record": record}
    response = alice_client.post("/api/v1/messages/preview", payload, format="json")
    assert response.status_code == 400
    message = response.json()["record"][0]
    assert "Give the record as" in message or "is not a record type" in message


@pytest.mark.parametrize("record", [{"type": "lead", "id": "twelve"}, {"type": "lead"}, "lead:x"])
def test_send_refuses_a_malformed_record_in_plain_words(alice_client, record):
    response = alice_client.post("/api/v1/messages", {"record": record, "body": "hi"}, format="json")
    assert response.status_code == 400
    assert response.json()["record"] == ['Give the record as {"type": "lead", "id": 12} (or "lead:12").']


def test_preview_offers_only_templates_the_member_can_see(alice, aaron_client, org_a):
    lead = LeadFactory(organization=org_a, first_name="Ann")
    personal = MessageTemplate.objects.create(
        organization=org_a, name="p", body="Hi {{first_name}}", owner=alice
    )
    draft = MessageTemplate.objects.create(organization=org_a, name="d", body="Hi", status="draft")
    for template in (personal, draft):
        payload = {"template": template.pk, "record": {"type": "lead", "id": lead.pk}}
        assert aaron_client.post("/api/v1/messages/preview", payload, format="json").status_code == 404
