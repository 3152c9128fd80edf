"""Templates: the merge-field renderer (with hypothesis), the CRUD API, and the preview of a template."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from templates_app.models import MessageTemplate
from templates_app.rendering import FIELD_RE, FIELDS, render
from tests.factories_crm import AccountFactory, ContactFactory, LeadFactory

URL = "/api/v1/templates"


@pytest.mark.django_db
def test_lead_fields_and_sender_render(alice, org_a):
    alice.first_name, alice.last_name = "Alice", "Admin"
    lead = LeadFactory(organization=org_a, first_name="Ann", last_name="Lee", company="", owner=alice)
    result = render(
        "Hi {{first_name}} ({{ full_name }}), {{sender_first_name}} here. {{company}}", lead, sender=alice
    )
    assert result.text == "Hi Ann (Ann Lee), Alice here. "
    assert result.missing_fields == ("company",) and result.unknown_fields == ()
    assert render("{{owner_name}}", lead).text == "Alice Admin"


@pytest.mark.django_db
def test_unknown_fields_are_reported_not_crashed(org_a):
    account = AccountFactory(organization=org_a, name="Globex Ltd")
    result = render("Dear {{first_name}} at {{name}} {{ nope }}", account)
    assert result.text == "Dear  at Globex Ltd "
    assert result.missing_fields == ("first_name", "nope") and result.unknown_fields == ("first_name", "nope")


@pytest.mark.django_db
def test_contact_account_name_and_status_label(org_a):
    contact = ContactFactory(organization=org_a, account=AccountFactory(organization=org_a, name="Initech"))
    assert render("{{account_name}} / {{status}}", contact).text == "Initech / Active"


@pytest.mark.django_db
def test_every_documented_field_is_known_for_its_type(org_a):
    from tests.factories_crm import CaseFactory, OpportunityFactory

    records = {
        "lead": LeadFactory(organization=org_a),
        "contact": ContactFactory(organization=org_a),
        "account": AccountFactory(organization=org_a),
        "case": CaseFactory(organization=org_a),
        "opportunity": OpportunityFactory(organization=org_a),
    }
    for record_type, fields in FIELDS.items():
        body = " ".join("{{" + name + "}}" for name in fields)
        assert render(body, records[record_type]).unknown_fields == ()


@given(st.text(max_size=300))
def test_text_without_merge_fields_is_unchanged(text):
    if "{{" not in text:
        assert render(text, None).text == text


@given(
    st.lists(
        st.sampled_from(["{{", "}}", "{{x}}", "{{ first_name }}", "{", "}", "a", " ", "é", "👍"]), max_size=40
    )
)
def test_renderer_never_raises_and_leaves_no_known_placeholder(parts):
    body = "".join(parts)
    result = render(body, None)
    # Without a record every field in the body is unknown: each is reported once and rendered as nothing.
    named = [m.group(1) for m in FIELD_RE.finditer(body)]
    assert result.unknown_fields == tuple(dict.fromkeys(named))
    assert result.text == FIELD_RE.sub("", body)


def test_admin_creates_agent_reads_but_cannot_write(alice_client, aaron_client, org_a):
    response = alice_client.post(
        URL, {"name": "Hello", "body": "Hi {{first_name}}", "record_type": "lead"}, format="json"
    )
    assert response.status_code == 201, response.content
    template_id = response.json()["id"]
    assert "first_name" in response.json()["merge_fields"]
    assert aaron_client.get(f"{URL}/{template_id}").status_code == 200
    assert [t["id"] for t in aaron_client.get(URL).json()["results"]] == [template_id]
    assert aaron_client.post(URL, {"name": "x", "body": "y"}, format="json").status_code == 403
    assert aaron_client.patch(f"{URL}/{template_id}", {"body": "z"}, format="json").status_code == 403
    assert (
        alice_client.patch(f"{URL}/{template_id}", {"body": "Hey {{first_name}}"}, format="json").status_code
        == 200
    )
    assert alice_client.delete(f"{URL}/{template_id}").status_code == 204
    assert not MessageTemplate.objects.exists()


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
