"""GET/POST /api/v1/consent: read and change the consent of a number; agents restrict, admins lift; outsiders
see nothing."""

import pytest

from messaging.models import ConsentEvent
from messaging.services.consent import contact_refusal, do_change_consent


@pytest.mark.django_db
def test_reading_a_number_in_any_format_shows_its_state_and_ledger(alice_client, org_a):
    do_change_consent(org_a, "+14155550123", "opt_out", "keyword", keyword="STOP")
    response = alice_client.get("/api/v1/consent", {"phone_number": "(415) 555-0123"})
    assert response.status_code == 200
    body = response.json()
    assert body["phone_number"] == "+14155550123"
    assert (body["opted_out"], body["blocked"], body["do_not_contact"], body["can_text"]) == (
        True,
        False,
        False,
        False,
    )
    assert "opted out" in body["refusal"]
    assert [(e["action"], e["method"], e["keyword"]) for e in body["events"]] == [
        ("opt_out", "keyword", "STOP")
    ]


@pytest.mark.django_db
def test_an_agent_can_block_and_mark_do_not_contact_as_agent(aaron_client, org_a, aaron):
    for action in ("block", "do_not_contact"):
        response = aaron_client.post(
            "/api/v1/consent",
            {"phone_number": "+1 415 555 0124", "action": action, "note": "rude"},
            format="json",
        )
        assert response.status_code == 201, response.content
    body = response.json()
    assert body["blocked"] and body["do_not_contact"] and not body["can_text"]
    events = ConsentEvent.objects.filter(organization=org_a, phone_number="+14155550124").order_by("id")
    assert [(e.action, e.method, e.actor_id, e.note) for e in events] == [
        ("block", "agent", aaron.pk, "rude"),
        ("do_not_contact", "agent", aaron.pk, "rude"),
    ]


@pytest.mark.django_db
def test_an_agent_cannot_lift_a_restriction_but_an_admin_can(aaron_client, alice_client, org_a):
    do_change_consent(org_a, "+14155550125", "do_not_contact", "agent")
    for action in ("allow_contact", "unblock", "opt_in"):
        response = aaron_client.post("/api/v1/consent", {"phone_number": "+14155550125", "action": action})
        assert response.status_code == 403
    assert contact_refusal(org_a, "+14155550125")
    response = alice_client.post(
        "/api/v1/consent", {"phone_number": "+14155550125", "action": "allow_contact"}
    )
    assert response.status_code == 201
    assert contact_refusal(org_a, "+14155550125") is None


@pytest.mark.django_db
def test_an_api_token_change_is_recorded_with_method_api(token_client_for, alice, org_a):
    client = token_client_for(alice, org_a)
    response = client.post(
        "/api/v1/consent", {"phone_number": "+14155550126", "action": "opt_out"}, format="json"
    )
    assert response.status_code == 201
    assert ConsentEvent.objects.get(phone_number="+14155550126").method == "api"


@pytest.mark.django_db
def test_bad_numbers_unknown_actions_and_unknown_fields_are_refused(alice_client):
    assert alice_client.get("/api/v1/consent", {"phone_number": "not a number"}).status_code == 400
    assert alice_client.get("/api/v1/consent").status_code == 400
    response = alice_client.post("/api/v1/consent", {"phone_number": "+14155550127", "action": "help"})
    assert response.status_code == 400
    response = alice_client.post(
        "/api/v1/consent", {"phone_number": "+14155550127", "action": "block", "reason": "x"}, format="json"
    )
    assert response.status_code == 400 and "reason" in response.json()
    assert not ConsentEvent.objects.exists()


@pytest.mark.django_db
def test_an_outsider_sees_nothing_of_another_organizations_consent_and_changes_only_their_own(
    bob_client, org_a, org_b
):
    do_change_consent(org_a, "+14155550128", "block", "agent", note="canary-A")
    body = bob_client.get("/api/v1/consent", {"phone_number": "+14155550128"}).json()
    assert body["events"] == [] and not body["blocked"] and body["can_text"]
    assert "canary-A" not in str(body)
    bob_client.post("/api/v1/consent", {"phone_number": "+14155550128", "action": "unblock"})
    assert contact_refusal(org_a, "+14155550128")  # org A's block is untouched
    assert ConsentEvent.objects.filter(organization=org_b).count() == 1


@pytest.mark.django_db
def test_anonymous_requests_are_refused(client):
    assert client.get("/api/v1/consent", {"phone_number": "+14155550129"}).status_code in (401, 403)


@pytest.mark.django_db
def test_the_consent_endpoint_is_in_the_schema(alice_client):
    schema = alice_client.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "/api/v1/consent" in schema
