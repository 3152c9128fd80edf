"""Launching the embedded record widget: minting launch tokens, exchanging them once for an embed session,
and every refusal (expired, replayed, tampered, another organization's, an id edited in the page, an
unmapped CRM user). Two organizations throughout; the API as a CRM's server and the embed page call it."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tenancy import embed
from tenancy.embed import do_add_crm_user_mapping, do_mint_launch_token
from tenancy.models import EmbedSession, LaunchToken, Role
from tests.factories import MembershipFactory
from tests.factories_crm import LeadFactory


@pytest.fixture
def maria(org_a, aaron):
    return LeadFactory(
        organization=org_a,
        owner=aaron,
        first_name="Maria",
        last_name="Lopez",
        mobile_phone="+12025550143",
        external_id="00Q5e00000AbCdE",
    )


@pytest.fixture
def mint_client(token_client_for, alice, org_a):
    return token_client_for(alice, org_a)


def _mint(client, **fields):
    body = {
        "crm": "zoho",
        "email": "aaron@acme.test",
        "record_type": "Leads",
        "external_id": "00Q5e00000AbCdE",
    }
    body.update(fields)
    return client.post("/api/v1/embed/tokens", body, format="json")


def _exchange(token, org="acme", record_type="lead", external_id="00Q5e00000AbCdE", phone="", client=None):
    client = client or APIClient()
    body = {
        "token": token,
        "org": org,
        "record_type": record_type,
        "external_id": external_id,
        "phone": phone,
    }
    return client.post("/api/v1/embed/session", body, format="json", HTTP_ORIGIN="http://testserver")


@pytest.mark.django_db
def test_admin_api_token_mints_a_launch_url_with_the_token_in_the_fragment(mint_client, maria):
    answer = _mint(mint_client)
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["expires_in"] == 60
    assert body["url"] == f"http://testserver/embed/acme/r/lead/00Q5e00000AbCdE/#launch={body['token']}"
    assert answer["Cache-Control"] == "no-store" and answer["Referrer-Policy"] == "no-referrer"
    stored = LaunchToken.objects.get()
    assert (stored.expires_at - stored.created_at) <= timedelta(seconds=61) and stored.used_at is None
    assert body["token"] not in json.dumps(list(LaunchToken.objects.values()), default=str)


@pytest.mark.django_db
def test_agent_token_and_login_session_cannot_mint(token_client_for, aaron, org_a, aaron_client, maria):
    assert _mint(token_client_for(aaron, org_a)).status_code == 403
    assert _mint(aaron_client).status_code in (401, 403)
    assert _mint(APIClient()).status_code == 401
    assert LaunchToken.objects.count() == 0


@pytest.mark.django_db
def test_exchange_opens_a_session_scoped_to_the_member_and_record(mint_client, maria, aaron):
    token = _mint(mint_client).json()["token"]
    answer = _exchange(token)
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["state"] == "ready" and body["record"] == {
        "type": "lead",
        "id": maria.pk,
        "name": "Maria Lopez",
    }
    cookie = answer["Set-Cookie"]
    assert cookie.startswith(f"__Host-qs_embed={body['key']};")
    for attribute in ("Path=/", "Secure", "HttpOnly", "SameSite=None", "Partitioned"):
        assert attribute in cookie.split("; "), cookie
    assert "Domain" not in cookie
    assert answer["Cache-Control"] == "no-store" and answer["Referrer-Policy"] == "no-referrer"
    session = EmbedSession.objects.get()
    assert (session.user, session.record_type, session.record_id, session.phone) == (
        aaron,
        "lead",
        maria.pk,
        "+12025550143",
    )
    assert session.key_hash != body["key"] and body["key"] not in session.key_hash


@pytest.mark.django_db
def test_replayed_token_is_refused(mint_client, maria):
    token = _mint(mint_client).json()["token"]
    assert _exchange(token).status_code == 201
    again = _exchange(token)
    assert again.status_code == 403 and again.json()["code"] == "replayed"
    assert EmbedSession.objects.count() == 1


@pytest.mark.django_db
def test_expired_token_is_refused(mint_client, maria, monkeypatch):
    token = _mint(mint_client).json()["token"]
    later = timezone.now() + timedelta(seconds=61)
    monkeypatch.setattr(embed.timezone, "now", lambda: later)
    answer = _exchange(token)
    assert answer.status_code == 403 and answer.json()["code"] == "expired"
    assert EmbedSession.objects.count() == 0


def _tamper(token: str, **claims) -> str:
    prefix, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(claims)
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{prefix}.{forged}.{signature}"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "claims",
    [{"rid": "00Q5e00000OTHER"}, {"email": "alice@acme.test"}, {"exp": 4102444800}, {"sub": "someone-else"}],
)
def test_tampered_claim_is_refused(mint_client, maria, claims):
    token = _mint(mint_client).json()["token"]
    forged = _tamper(token, **claims)
    external_id = claims.get("rid", "00Q5e00000AbCdE")
    answer = _exchange(forged, external_id=external_id)
    assert answer.status_code == 403 and answer.json()["code"] == "invalid"
    assert _exchange(token[:-2] + ("AA" if not token.endswith("AA") else "BB")).json()["code"] == "invalid"
    assert EmbedSession.objects.count() == 0


@pytest.mark.django_db
def test_token_of_another_organization_is_refused(token_client_for, bob, org_b, maria):
    token_b = _mint(token_client_for(bob, org_b), email="bob@globex.test").json()["token"]
    answer = _exchange(token_b, org="acme")
    assert answer.status_code == 403 and answer.json()["code"] == "wrong_org"
    # Claiming organization A inside B's token breaks its signature.
    forged = _tamper(token_b, org=maria.organization_id)
    assert _exchange(forged, org="acme").json()["code"] == "invalid"
    assert EmbedSession.objects.count() == 0


@pytest.mark.django_db
def test_id_edited_in_the_page_address_is_refused(mint_client, maria, org_a, aaron):
    other = LeadFactory(organization=org_a, owner=aaron, external_id="00Q5e00000OTHER")
    token = _mint(mint_client).json()["token"]
    answer = _exchange(token, external_id=other.external_id)
    assert answer.status_code == 403 and answer.json()["code"] == "mismatch"
    assert _exchange(token, record_type="contact").json()["code"] == "mismatch"
    # The refused attempt did not spend the token: the page it was minted for still opens.
    assert _exchange(token).status_code == 201


@pytest.mark.django_db
def test_unmapped_crm_user_gets_ask_your_admin(mint_client, maria):
    token = _mint(mint_client, email="stranger@acme.test", crm_user_id="zu-77").json()["token"]
    answer = _exchange(token)
    assert answer.status_code == 403
    body = answer.json()
    assert body["code"] == "unmapped" and "Ask your QuickSend admin" in body["detail"]
    assert (body["crm"], body["crm_user_id"], body["email"]) == ("Zoho CRM", "zu-77", "stranger@acme.test")


@pytest.mark.django_db
def test_explicit_mapping_wins_over_email_and_members_of_other_orgs_never_match(
    mint_client, maria, alice, aaron, org_a, bob
):
    do_add_crm_user_mapping(org_a, alice, crm="zoho", crm_user_id="zu-1", user=aaron)
    token = _mint(mint_client, email="alice@acme.test", crm_user_id="zu-1").json()["token"]
    assert _exchange(token).status_code == 201
    assert EmbedSession.objects.get().user == aaron
    # Bob's email is a member's, of another organization: not a member of this one.
    token = _mint(mint_client, email="bob@globex.test", crm_user_id="").json()["token"]
    assert _exchange(token).json()["code"] == "unmapped"


@pytest.mark.django_db
def test_deactivated_member_cannot_launch(mint_client, maria, aaron, org_a):
    MembershipFactory(organization=org_a, role=Role.AGENT)  # another seat, so the org still has members
    aaron.memberships.filter(organization=org_a).update(is_active=False)
    token = _mint(mint_client).json()["token"]
    assert _exchange(token).json()["code"] == "unmapped"


@pytest.mark.django_db
def test_dynamics_guid_ids_lose_their_braces(mint_client, org_a, aaron):
    lead = LeadFactory(organization=org_a, owner=aaron, external_id="6f9619ff-8b86-d011-b42d-00c04fc964ff")
    answer = _mint(
        mint_client, crm="dynamics", record_type="lead", external_id="{6F9619FF-8B86-D011-B42D-00C04FC964FF}"
    )
    assert answer.json()["url"].startswith(
        "http://testserver/embed/acme/r/lead/6f9619ff-8b86-d011-b42d-00c04fc964ff/#"
    )
    exchanged = _exchange(answer.json()["token"], external_id="{6F9619FF-8B86-D011-B42D-00C04FC964FF}").json()
    assert exchanged["record"]["id"] == lead.pk


@pytest.mark.django_db
def test_a_record_not_in_quicksend_yet_can_be_created_from_the_page(mint_client, org_a, aaron):
    token = _mint(mint_client, external_id="zcrm_991", phone="(202) 555-0199", name="Ana Diaz").json()[
        "token"
    ]
    body = _exchange(token, external_id="zcrm_991").json()
    assert body["state"] == "missing" and body["can_create"] is True and body["record"] is None
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Embed {body['key']}", HTTP_X_QUICKSEND_EMBED="1")
    created = client.post("/api/v1/embed/record", {}, format="json")
    assert created.status_code == 201, created.content
    record = created.json()["record"]
    assert record["name"] == "Ana Diaz"
    from crm.models import Lead

    lead = Lead.objects.get(pk=record["id"])
    assert (lead.external_id, lead.mobile_phone_e164, lead.owner) == ("zcrm_991", "+12025550199", aaron)
    assert client.get("/api/v1/embed/context").json()["state"] == "ready"


@pytest.mark.django_db
def test_launch_by_phone_finds_the_record_with_that_number(mint_client, maria):
    answer = _mint(mint_client, external_id="", record_type="", phone="202-555-0143").json()
    assert "/embed/acme/phone/+12025550143/#launch=" in answer["url"]
    body = _exchange(answer["token"], record_type="", external_id="", phone="+12025550143").json()
    assert body["record"]["id"] == maria.pk
    token = _mint(mint_client, external_id="", record_type="", phone="202-555-0143").json()["token"]
    assert _exchange(token, record_type="", external_id="", phone="+12025550100").json()["code"] == "mismatch"


@pytest.mark.django_db
def test_a_record_without_an_id_yet_is_save_it_first(mint_client, client):
    answer = _mint(mint_client, external_id="")
    assert answer.status_code == 400 and "Save the record first" in answer.json()["detail"]
    page = client.get("/embed/acme/r/lead/")
    assert page.status_code == 200 and b'data-state="unsaved"' in page.content


@pytest.mark.django_db
def test_exchange_from_another_site_is_refused(mint_client, maria):
    token = _mint(mint_client).json()["token"]
    answer = APIClient().post(
        "/api/v1/embed/session",
        {"token": token, "org": "acme", "record_type": "lead", "external_id": "00Q5e00000AbCdE"},
        format="json",
        HTTP_ORIGIN="https://evil.example",
    )
    assert answer.status_code == 403 and answer.json()["code"] == "origin"


@pytest.mark.django_db
def test_rotating_the_signing_key_voids_unopened_links(mint_client, maria, org_a):
    token = _mint(mint_client).json()["token"]
    embed.do_rotate_signing_key(org_a)
    assert _exchange(token).json()["code"] == "invalid"


@pytest.mark.django_db
def test_signing_key_is_encrypted_at_rest(org_a):
    do_mint_launch_token(org_a, crm="generic", crm_user_id="x", record_type="lead", external_id="e1")
    stored = embed.settings_for(org_a)
    key = stored.get_secret("signing_key")
    assert len(key) >= 40 and key not in stored.signing_key


@pytest.mark.django_db
def test_purge_deletes_spent_tokens_and_ended_sessions(mint_client, maria):
    token = _mint(mint_client).json()["token"]
    _exchange(token)
    later = timezone.now() + timedelta(days=1)
    assert embed.purge_expired(later) == {"launch_tokens": 1, "sessions": 1}


@pytest.mark.django_db
def test_outsider_admin_cannot_mint_for_another_org_record(token_client_for, bob, org_b, maria):
    # Bob's token mints for Globex only: its URL and claims name Globex, never Acme.
    body = _mint(token_client_for(bob, org_b), email="bob@globex.test").json()
    assert "/embed/globex/" in body["url"]
    exchanged = _exchange(body["token"], org="globex").json()
    assert exchanged["state"] == "missing" and exchanged["record"] is None  # Acme's lead is not Globex's


@pytest.mark.django_db
def test_ids_that_cannot_be_a_page_address_are_refused_and_claims_lose_control_characters(mint_client, maria):
    answer = _mint(mint_client, external_id="a/b")
    assert answer.status_code == 400 and answer.json()["field"] == "external_id"
    assert _mint(mint_client, name="Ana\x00").status_code == 400  # DRF refuses NUL outright
    body = _mint(mint_client, name="Ana\x1b Diaz", crm_user_id="zu\x07-1").json()
    claims = json.loads(base64.urlsafe_b64decode(body["token"].split(".")[1] + "=="))
    assert (claims["name"], claims["sub"]) == ("Ana Diaz", "zu-1")
