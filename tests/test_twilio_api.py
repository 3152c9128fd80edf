"""REST API for Twilio accounts, numbers and messaging settings."""

import pytest

from messaging.models import MemberMessagingSettings, MessagingSettings, PhoneNumber, TwilioAccount
from tenancy.models import Membership
from tests.factories import TeamFactory
from tests.factories_messaging import PhoneNumberFactory, TwilioAccountFactory
from tests.plugins.servers import free_port

SUCCESS = "Twilio credentials verified and saved successfully."
AUTH_FAILED = "Authentication failed. Please check your Twilio SID and Auth Token."


@pytest.fixture
def account_a(org_a):
    return TwilioAccountFactory(organization=org_a, auth_token="stored-token-never-shown")


@pytest.fixture
def number_a(account_a):
    return PhoneNumberFactory(account=account_a, phone_number="+14155550142", label="Support – NY")


@pytest.mark.django_db
def test_admin_connects_an_account_through_the_api(alice, org_a, token_client_for, twilio_sandbox):
    sid, token = twilio_sandbox.new_account()
    twilio_sandbox.add_number(sid)
    client = token_client_for(alice, org_a)
    response = client.post(
        "/api/v1/twilio-accounts",
        {"account_sid": sid, "auth_token": token, "friendly_name": "Main"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["detail"] == SUCCESS
    assert body["status"] == "valid" and body["friendly_name"] == "Main"
    assert body["numbers_sync"].startswith("Numbers: 1 active number")
    assert "auth_token" not in body
    assert token not in response.content.decode()
    assert body["auth_token_masked"].endswith(token[-4:])
    assert PhoneNumber.objects.filter(organization=org_a).count() == 1


@pytest.mark.django_db
def test_a_wrong_token_through_the_api_is_400_with_the_exact_message(alice_client, twilio_sandbox):
    sid, _token = twilio_sandbox.new_account()
    response = alice_client.post(
        "/api/v1/twilio-accounts", {"account_sid": sid, "auth_token": "0" * 32}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"detail": AUTH_FAILED, "code": 20003, "kind": "auth", "retryable": False}
    assert not TwilioAccount.objects.exists()


@pytest.mark.django_db
def test_unreachable_twilio_through_the_api_is_503(alice_client, settings):
    settings.TWILIO_API_BASE_URL = f"http://127.0.0.1:{free_port()}/sandbox"
    response = alice_client.post(
        "/api/v1/twilio-accounts", {"account_sid": "AC" + "a" * 32, "auth_token": "x" * 32}, format="json"
    )
    assert response.status_code == 503
    assert response.json()["kind"] == "unreachable" and response.json()["retryable"] is True
    assert not TwilioAccount.objects.exists()


@pytest.mark.django_db
def test_a_malformed_sid_through_the_api_is_400(alice_client):
    response = alice_client.post(
        "/api/v1/twilio-accounts", {"account_sid": "AC1", "auth_token": "x"}, format="json"
    )
    assert response.status_code == 400
    assert "That Account SID is not valid" in response.json()["detail"][0]


@pytest.mark.django_db
def test_unknown_fields_are_refused(alice_client):
    response = alice_client.post(
        "/api/v1/twilio-accounts",
        {"account_sid": "AC" + "a" * 32, "auth_token": "x", "tokn": 1},
        format="json",
    )
    assert response.status_code == 400 and "tokn" in response.json()


@pytest.mark.django_db
def test_the_api_never_returns_the_token(alice_client, account_a):
    for url in ("/api/v1/twilio-accounts", f"/api/v1/twilio-accounts/{account_a.pk}"):
        response = alice_client.get(url)
        assert response.status_code == 200
        assert "stored-token-never-shown" not in response.content.decode()
        assert "auth_token_encrypted" not in response.content.decode()


@pytest.mark.django_db
def test_validate_and_refresh_actions(alice_client, org_a, twilio_sandbox):
    sid, token = twilio_sandbox.new_account()
    account = TwilioAccountFactory(organization=org_a, account_sid=sid, auth_token=token, status="draft")
    response = alice_client.post(f"/api/v1/twilio-accounts/{account.pk}/validate")
    assert response.status_code == 200 and response.json()["status"] == "valid"
    twilio_sandbox.add_number(sid, friendly_name="Fresh")
    response = alice_client.post(f"/api/v1/twilio-accounts/{account.pk}/refresh-numbers")
    assert response.status_code == 200
    assert [n["friendly_name"] for n in response.json()] == ["Fresh"]


@pytest.mark.django_db
def test_an_account_can_be_addressed_by_its_sid(alice_client, account_a):
    response = alice_client.get(f"/api/v1/twilio-accounts/{account_a.account_sid}")
    assert response.status_code == 200 and response.json()["id"] == account_a.pk


@pytest.mark.django_db
def test_agents_cannot_use_the_accounts_api(aaron_client, account_a):
    assert aaron_client.get("/api/v1/twilio-accounts").status_code == 403
    assert aaron_client.post("/api/v1/twilio-accounts", {}, format="json").status_code == 403
    assert aaron_client.delete(f"/api/v1/twilio-accounts/{account_a.pk}").status_code == 403
    assert TwilioAccount.objects.filter(pk=account_a.pk).exists()


@pytest.mark.django_db
def test_outsiders_get_404_on_accounts_and_numbers(bob_client, account_a, number_a):
    for url in (
        f"/api/v1/twilio-accounts/{account_a.pk}",
        f"/api/v1/twilio-accounts/{account_a.account_sid}",
        f"/api/v1/numbers/{number_a.pk}",
        f"/api/v1/numbers/{number_a.sid}",
    ):
        assert bob_client.get(url).status_code == 404
    assert bob_client.post(f"/api/v1/twilio-accounts/{account_a.pk}/validate").status_code == 404
    assert (
        bob_client.patch(f"/api/v1/numbers/{number_a.pk}", {"label": "x"}, format="json").status_code == 404
    )
    assert bob_client.post(f"/api/v1/numbers/{number_a.pk}/configure-webhook").status_code == 404
    assert bob_client.delete(f"/api/v1/twilio-accounts/{account_a.pk}").status_code == 404
    assert bob_client.get("/api/v1/numbers").json()["results"] == []


@pytest.mark.django_db
def test_agents_list_numbers_and_see_which_they_may_use(aaron_client, org_a, aaron, account_a, number_a):
    other = PhoneNumberFactory(account=account_a, phone_number="+14155550143")
    number_a.assigned_members.add(Membership.objects.get(user=aaron, organization=org_a))
    rows = {r["id"]: r for r in aaron_client.get("/api/v1/numbers").json()["results"]}
    assert rows[number_a.pk]["usable_by_me"] is True
    assert rows[number_a.pk]["display_name"] == "Support – NY · +1 415-555-0142"
    assert rows[other.pk]["usable_by_me"] is False
    usable = aaron_client.get("/api/v1/numbers?usable=true").json()["results"]
    assert [r["id"] for r in usable] == [number_a.pk]


@pytest.mark.django_db
def test_agents_cannot_change_numbers(aaron_client, number_a):
    assert (
        aaron_client.patch(f"/api/v1/numbers/{number_a.pk}", {"label": "x"}, format="json").status_code == 403
    )
    assert aaron_client.post(f"/api/v1/numbers/{number_a.pk}/configure-webhook").status_code == 403


@pytest.mark.django_db
def test_admin_labels_and_assigns_a_number(alice_client, org_a, aaron, number_a):
    team = TeamFactory(organization=org_a)
    aaron_m = Membership.objects.get(user=aaron, organization=org_a)
    response = alice_client.patch(
        f"/api/v1/numbers/{number_a.pk}",
        {"label": "Sales East", "member_ids": [aaron_m.pk], "team_ids": [team.pk]},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["label"] == "Sales East"
    assert response.json()["member_ids"] == [aaron_m.pk] and response.json()["team_ids"] == [team.pk]


@pytest.mark.django_db
def test_assigning_another_orgs_member_or_team_is_refused(alice_client, org_b, bob, number_a):
    bob_m = Membership.objects.get(user=bob, organization=org_b)
    foreign_team = TeamFactory(organization=org_b)
    r1 = alice_client.patch(f"/api/v1/numbers/{number_a.pk}", {"member_ids": [bob_m.pk]}, format="json")
    r2 = alice_client.patch(f"/api/v1/numbers/{number_a.pk}", {"team_ids": [foreign_team.pk]}, format="json")
    assert r1.status_code == 400 and f"Unknown member id(s): {bob_m.pk}." in r1.json()["detail"]
    assert r2.status_code == 400
    assert not number_a.assigned_members.exists() and not number_a.assigned_teams.exists()


@pytest.mark.django_db
def test_messaging_settings_default_must_be_an_own_sendable_number(alice_client, org_b, number_a):
    foreign = PhoneNumberFactory(account=TwilioAccountFactory(organization=org_b))
    assert (
        alice_client.patch(
            "/api/v1/messaging-settings", {"default_number": foreign.pk}, format="json"
        ).status_code
        == 400
    )
    voice = PhoneNumberFactory(account=number_a.account, phone_number="+14155550149", sms_capable=False)
    response = alice_client.patch("/api/v1/messaging-settings", {"default_number": voice.pk}, format="json")
    assert response.status_code == 400 and "cannot send SMS" in response.json()["detail"][0]
    response = alice_client.patch(
        "/api/v1/messaging-settings",
        {"default_number": number_a.pk, "agents_may_use_any_number": True},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["default_number"] == number_a.pk and response.json()["agents_may_use_any_number"]
    row = MessagingSettings.objects.get(organization=number_a.organization)
    assert row.default_number == number_a and row.agents_may_use_any_number


@pytest.mark.django_db
def test_agents_read_but_cannot_change_messaging_settings(aaron_client):
    assert aaron_client.get("/api/v1/messaging-settings").status_code == 200
    response = aaron_client.patch(
        "/api/v1/messaging-settings", {"agents_may_use_any_number": True}, format="json"
    )
    assert response.status_code == 403


@pytest.mark.django_db
def test_my_default_number(aaron_client, org_a, aaron, number_a):
    other = PhoneNumberFactory(account=number_a.account, phone_number="+14155550144")
    m = Membership.objects.get(user=aaron, organization=org_a)
    number_a.assigned_members.add(m)
    assert aaron_client.get("/api/v1/me/default-number").json() == {
        "default_number": None,
        "effective_default": None,
    }
    response = aaron_client.put("/api/v1/me/default-number", {"default_number": number_a.pk}, format="json")
    assert response.status_code == 200
    assert response.json() == {"default_number": number_a.pk, "effective_default": number_a.pk}
    response = aaron_client.put("/api/v1/me/default-number", {"default_number": other.pk}, format="json")
    assert response.status_code == 400
    assert MemberMessagingSettings.objects.get(membership=m).default_number == number_a


@pytest.mark.django_db
def test_every_endpoint_is_in_the_schema(alice_client):
    paths = alice_client.get("/api/schema/?format=json").json()["paths"]
    for path in (
        "/api/v1/twilio-accounts",
        "/api/v1/twilio-accounts/{id}",
        "/api/v1/twilio-accounts/{id}/validate",
        "/api/v1/twilio-accounts/{id}/refresh-numbers",
        "/api/v1/numbers",
        "/api/v1/numbers/{id}",
        "/api/v1/numbers/{id}/configure-webhook",
        "/api/v1/numbers/refresh",
        "/api/v1/messaging-settings",
        "/api/v1/me/default-number",
    ):
        assert path in paths, path


@pytest.mark.django_db
def test_the_numbers_list_runs_a_constant_number_of_queries(
    alice_client, org_a, account_a, django_assert_max_num_queries
):
    for i in range(20):
        n = PhoneNumberFactory(account=account_a, phone_number=f"+1415555{2000 + i}")
        n.assigned_members.set(Membership.objects.filter(organization=org_a))
        n.assigned_teams.add(TeamFactory(organization=org_a))
    with django_assert_max_num_queries(12):
        response = alice_client.get("/api/v1/numbers")
    assert len(response.json()["results"]) == 20


@pytest.mark.django_db
def test_account_with_conversation_history_cannot_be_disconnected(alice_client, org_a):
    from messaging.models import TwilioAccount
    from tests.factories_messaging import ConversationFactory, PhoneNumberFactory, TwilioAccountFactory

    account = TwilioAccountFactory(organization=org_a)
    ConversationFactory(phone_number=PhoneNumberFactory(account=account))
    response = alice_client.delete(f"/api/v1/twilio-accounts/{account.pk}")
    assert response.status_code == 400
    assert "message history" in response.json()["detail"][0]
    assert TwilioAccount.objects.filter(pk=account.pk).exists()
