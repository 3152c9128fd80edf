"""What an embed session reaches (its record's texts, nothing else), how embed pages may be framed, and the
CRMs' own launch steps: Salesforce Canvas signed requests and HubSpot v3 signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time

import pytest
from django.test import Client
from rest_framework.test import APIClient

from quicksend.logging import redact
from tenancy.embed import do_mint_launch_token, do_save_embed_settings
from tenancy.embed_signatures import hubspot_v3_signature
from tenancy.models import EmbedSession, LaunchToken
from tests.factories_crm import LeadFactory
from tests.factories_messaging import ConversationFactory, PhoneNumberFactory, TwilioAccountFactory

CRM_ORIGIN = "https://acme.lightning.force.com"


@pytest.fixture
def line(org_a, aaron):
    number = PhoneNumberFactory(account=TwilioAccountFactory(organization=org_a), label="Sales line")
    number.assigned_members.add(aaron.memberships.get(organization=org_a))
    return number


@pytest.fixture
def leads(org_a, aaron, line):
    maria = LeadFactory(
        organization=org_a, owner=aaron, first_name="Maria", mobile_phone="+12025550143", external_id="L-1"
    )
    other = LeadFactory(
        organization=org_a, owner=aaron, first_name="Olga", mobile_phone="+12025550144", external_id="L-2"
    )
    mine = ConversationFactory(
        phone_number=line, customer_number="+12025550143", record_type="lead", record_id=maria.pk
    )
    theirs = ConversationFactory(
        phone_number=line, customer_number="+12025550144", record_type="lead", record_id=other.pk
    )
    return {"maria": maria, "other": other, "mine": mine, "theirs": theirs}


def embed_client(org, email="aaron@acme.test", external_id="L-1", use_cookie=False) -> APIClient:
    token = do_mint_launch_token(
        org, crm="generic", crm_user_id="", email=email, record_type="lead", external_id=external_id
    )
    client = APIClient()
    answer = client.post(
        "/api/v1/embed/session",
        {"token": token, "org": org.slug, "record_type": "lead", "external_id": external_id},
        format="json",
    )
    assert answer.status_code == 201, answer.content
    key = answer.json()["key"]
    if use_cookie:
        client.cookies["__Host-qs_embed"] = key
        client.credentials(HTTP_X_QUICKSEND_EMBED="1")
    else:
        client.credentials(HTTP_AUTHORIZATION=f"Embed {key}", HTTP_X_QUICKSEND_EMBED="1")
    client.embed_key = key
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("use_cookie", [False, True], ids=["bearer", "cookie"])
def test_embed_session_reads_its_record_and_nothing_else(org_a, leads, use_cookie):
    client = embed_client(org_a, use_cookie=use_cookie)
    maria, other, mine, theirs = leads["maria"], leads["other"], leads["mine"], leads["theirs"]
    ok = client.get(f"/api/v1/texting?record_type=lead&record_id={maria.pk}&messages=30")
    assert ok.status_code == 200 and ok.json()["conversation_id"] == mine.pk
    assert ok["Cache-Control"] == "no-store" and ok["Referrer-Policy"] == "no-referrer"
    assert client.get(f"/api/v1/conversations/{mine.pk}/messages").status_code == 200
    assert client.get(f"/api/v1/conversations/{mine.pk}/sessions").status_code == 200
    # An id edited in the page: the member could see these in the app, the embed session cannot.
    for url in (
        f"/api/v1/texting?record_type=lead&record_id={other.pk}",
        f"/api/v1/texting?conversation={theirs.pk}",
        f"/api/v1/conversations/{theirs.pk}/messages",
        f"/api/v1/conversations/{theirs.pk}/sessions",
        f"/api/v1/conversations/{mine.pk}",
        "/api/v1/conversations",
        "/api/v1/messages",
        "/api/v1/members",
        "/api/v1/leads",
        f"/api/v1/leads/{maria.pk}",
        "/api/v1/notifications",
    ):
        answer = client.get(url)
        assert answer.status_code == 404, (url, answer.status_code)
        assert "Olga" not in answer.content.decode()
    for payload in (
        {"record": {"type": "lead", "id": other.pk}, "body": "hi"},
        {"conversation": theirs.pk, "body": "hi"},
        {"to": "+12025550144", "body": "hi"},
    ):
        assert client.post("/api/v1/messages", payload, format="json").status_code == 404, payload
    assert client.post(f"/api/v1/conversations/{mine.pk}/archive", {}, format="json").status_code == 404
    assert (
        client.post(
            "/api/v1/consent", {"phone_number": "+12025550144", "action": "opt_out"}, format="json"
        ).status_code
        == 404
    )
    assert (
        client.post(
            "/api/v1/messages/preview",
            {"body": "x", "record": {"type": "lead", "id": other.pk}},
            format="json",
        ).status_code
        == 404
    )
    assert client.post("/api/v1/messages/preview", {"body": "hello"}, format="json").status_code == 200


@pytest.mark.django_db
def test_embed_session_sends_to_its_record(org_a, leads):
    client = embed_client(org_a)
    answer = client.post(
        "/api/v1/messages",
        {"record": {"type": "lead", "id": leads["maria"].pk}, "body": "Hi"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="embed-1",
    )
    assert answer.status_code in (201, 202), answer.content
    assert answer.json()["to_number"] == "+12025550143"


@pytest.mark.django_db
def test_cookie_without_the_embed_header_is_not_an_embed_session(org_a, leads):
    client = embed_client(org_a, use_cookie=True)
    client.credentials()  # a cross-site form or fetch cannot add X-QuickSend-Embed
    assert client.get(f"/api/v1/texting?record_type=lead&record_id={leads['maria'].pk}").status_code in (
        401,
        403,
    )
    assert client.post(
        "/api/v1/messages", {"record": {"type": "lead", "id": leads["maria"].pk}, "body": "x"}, format="json"
    ).status_code in (401, 403)


@pytest.mark.django_db
def test_ended_session_and_leaving_the_org_end_embed_access(org_a, leads, aaron):
    client = embed_client(org_a)
    url = f"/api/v1/texting?record_type=lead&record_id={leads['maria'].pk}"
    assert client.get(url).status_code == 200
    aaron.memberships.update(is_active=False)
    assert client.get(url).status_code == 401
    aaron.memberships.update(is_active=True)
    assert client.get(url).status_code == 200
    EmbedSession.objects.update(revoked_at="2026-01-01T00:00:00Z")
    assert client.get(url).status_code == 401
    bogus = APIClient()
    bogus.credentials(HTTP_AUTHORIZATION="Embed qse_" + "x" * 43, HTTP_X_QUICKSEND_EMBED="1")
    assert bogus.get(url).status_code == 401


@pytest.mark.django_db
def test_embed_session_of_another_org_reaches_nothing_of_this_one(org_a, org_b, bob, leads):
    LeadFactory(organization=org_b, owner=bob, external_id="L-1", mobile_phone="+12025550143")
    client = embed_client(org_b, email="bob@globex.test")
    for url in (
        f"/api/v1/texting?record_type=lead&record_id={leads['maria'].pk}",
        f"/api/v1/conversations/{leads['mine'].pk}/messages",
        f"/api/v1/texting?conversation={leads['mine'].pk}",
    ):
        assert client.get(url).status_code == 404, url


# --- framing ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_embed_page_is_framed_only_by_the_orgs_crm_origins(org_a, org_b, alice, client):
    do_save_embed_settings(
        org_a, alice, allowed_origins=[CRM_ORIGIN, "https://crm.zoho.eu"], match_users_by_email=True
    )
    page = client.get("/embed/acme/r/lead/L-1/")
    assert page.status_code == 200
    csp = page["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert sorted(directives["frame-ancestors"].split()) == [CRM_ORIGIN, "https://crm.zoho.eu"]
    assert "X-Frame-Options" not in page
    assert page["Referrer-Policy"] == "no-referrer" and page["Cache-Control"] == "no-store"
    # An organization that allowed no origin: nobody may frame its page.
    other = client.get("/embed/globex/r/lead/L-1/")
    assert "frame-ancestors 'none'" in other["Content-Security-Policy"] and other["X-Frame-Options"] == "DENY"
    # Every other page stays unframeable.
    login = client.get("/login/")
    assert login["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in login["Content-Security-Policy"]
    assert client.get("/embed/nobody/r/lead/L-1/").status_code == 404


@pytest.mark.django_db
def test_integrations_settings_refuse_what_is_not_an_origin(org_a, alice, alice_client, aaron_client):
    page = alice_client.get("/settings/integrations/")
    assert page.status_code == 200 and b"https://crm.zoho.eu" in page.content
    assert aaron_client.get("/settings/integrations/").status_code == 403
    answer = alice_client.post(
        "/settings/integrations/",
        {"custom_origins": "https://acme.my.salesforce.com/x", "known_origins": ["https://app.hubspot.com"]},
    )
    assert answer.status_code == 200 and b"is not an origin" in answer.content
    answer = alice_client.post(
        "/settings/integrations/",
        {
            "custom_origins": "https://ACME.lightning.force.com/\nhttp://crm.example.com",
            "known_origins": ["https://app.hubspot.com"],
        },
    )
    assert b"must use https" in answer.content
    answer = alice_client.post(
        "/settings/integrations/",
        {
            "custom_origins": "https://ACME.lightning.force.com/",
            "known_origins": ["https://app.hubspot.com"],
            "salesforce_consumer_secret": "s3cret",
            "match_users_by_email": "on",
        },
    )
    assert answer.status_code == 302
    from tenancy.models import EmbedSettings

    saved = EmbedSettings.objects.get(organization=org_a)
    assert saved.allowed_origins == ["https://acme.lightning.force.com", "https://app.hubspot.com"]
    assert (
        saved.get_secret("salesforce_consumer_secret") == "s3cret"
        and "s3cret" not in saved.salesforce_consumer_secret
    )


@pytest.mark.django_db
def test_admin_links_a_crm_user_and_outsiders_cannot_unlink_it(org_a, alice, aaron, alice_client, bob_client):
    membership = aaron.memberships.get(organization=org_a)
    answer = alice_client.post(
        "/settings/integrations/mappings", {"crm": "hubspot", "crm_user_id": "8841", "user": membership.pk}
    )
    assert answer.status_code == 302
    from tenancy.models import CrmUserMapping

    mapping = CrmUserMapping.objects.get()
    assert (mapping.crm, mapping.crm_user_id, mapping.user) == ("hubspot", "8841", aaron)
    assert bob_client.post(f"/settings/integrations/mappings/{mapping.pk}/delete").status_code == 404
    assert alice_client.post(f"/settings/integrations/mappings/{mapping.pk}/delete").status_code == 302
    assert not CrmUserMapping.objects.exists()


# --- Salesforce Canvas --------------------------------------------------------------------------------------


def _signed_request(secret: str, envelope: dict) -> str:
    encoded = base64.b64encode(json.dumps(envelope).encode()).decode()
    signature = base64.b64encode(
        hmac.new(secret.encode(), encoded.encode(), hashlib.sha256).digest()
    ).decode()
    return f"{signature}.{encoded}"


CANVAS = {
    "algorithm": "HMACSHA256",
    "userId": "005xx000001Sv6AAAS",
    "context": {
        "user": {"userId": "005xx000001Sv6AAAS", "email": "aaron@acme.test", "fullName": "Aaron"},
        "environment": {"parameters": {"recordId": "L-1", "recordType": "Lead"}},
    },
}


@pytest.mark.django_db
def test_canvas_signed_request_opens_the_widget_page_with_a_launch_token(org_a, alice, leads):
    do_save_embed_settings(
        org_a,
        alice,
        allowed_origins=[CRM_ORIGIN],
        match_users_by_email=True,
        salesforce_consumer_secret="consumer-secret",
    )
    client = Client(enforce_csrf_checks=True)  # Salesforce posts without our CSRF cookie: this one is exempt
    page = client.post(
        "/embed/acme/salesforce/canvas", {"signed_request": _signed_request("consumer-secret", CANVAS)}
    )
    assert page.status_code == 200, page.content
    html = page.content.decode()
    assert (
        'data-record-type="lead"' in html and 'data-external-id="L-1"' in html and 'data-launch="qsl.' in html
    )
    assert f"frame-ancestors {CRM_ORIGIN}" in page["Content-Security-Policy"]
    token = html.split('data-launch="')[1].split('"')[0]
    answer = APIClient().post(
        "/api/v1/embed/session",
        {"token": token, "org": "acme", "record_type": "lead", "external_id": "L-1"},
        format="json",
    )
    assert answer.status_code == 201 and answer.json()["record"]["id"] == leads["maria"].pk
    # No other page is CSRF-exempt: the settings form still needs the token.
    assert client.post("/settings/integrations/rotate-key").status_code == 403


@pytest.mark.django_db
def test_bad_canvas_hmac_is_refused(org_a, alice, leads):
    do_save_embed_settings(
        org_a,
        alice,
        allowed_origins=[CRM_ORIGIN],
        match_users_by_email=True,
        salesforce_consumer_secret="consumer-secret",
    )
    client = Client()
    signature = _signed_request("consumer-secret", CANVAS).split(".")[0]
    tampered = json.loads(json.dumps(CANVAS))
    tampered["context"]["environment"]["parameters"]["recordId"] = "L-2"
    tampered_envelope = base64.b64encode(json.dumps(tampered).encode()).decode()
    for signed in (
        _signed_request("wrong-secret", CANVAS),
        "garbage",
        "",
        f"{signature}.{tampered_envelope}",
    ):
        page = client.post("/embed/acme/salesforce/canvas", {"signed_request": signed})
        assert page.status_code == 403 and b"could not be verified" in page.content
        assert b"data-launch" not in page.content
    assert LaunchToken.objects.count() == 0


# --- HubSpot ------------------------------------------------------------------------------------------------


def _hubspot_post(secret: str, *, timestamp=None, body=None, signature=None, portal="4412"):
    body = json.dumps(body or {"objectId": "L-1", "objectTypeId": "0-1"}).encode()
    query = f"?userId=991&userEmail=aaron%40acme.test&portalId={portal}&appId=77"
    uri = f"http://testserver/api/v1/embed/hubspot/launch{query}"
    timestamp = str(timestamp if timestamp is not None else int(time.time() * 1000))
    signature = signature or hubspot_v3_signature(secret, "POST", uri, body, timestamp)
    return APIClient().post(
        f"/api/v1/embed/hubspot/launch{query}",
        body,
        content_type="application/json",
        HTTP_X_HUBSPOT_SIGNATURE_V3=signature,
        HTTP_X_HUBSPOT_REQUEST_TIMESTAMP=timestamp,
    )


@pytest.fixture
def hubspot(org_a, alice):
    do_save_embed_settings(
        org_a,
        alice,
        allowed_origins=["https://app.hubspot.com"],
        match_users_by_email=True,
        hubspot_portal_id="4412",
        hubspot_client_secret="hs-secret",
    )


@pytest.mark.django_db
def test_hubspot_v3_signed_fetch_gets_a_single_use_url(org_a, aaron, hubspot):
    LeadFactory(organization=org_a, owner=aaron, external_id="L-1")
    from crm.models import Contact

    Contact.objects.create(organization=org_a, owner=aaron, first_name="Hana", external_id="L-1")
    answer = _hubspot_post("hs-secret")
    assert answer.status_code == 201, answer.content
    assert answer.json()["url"].startswith("http://testserver/embed/acme/r/contact/L-1/#launch=qsl.")
    token = answer.json()["token"]
    first = APIClient().post(
        "/api/v1/embed/session",
        {"token": token, "org": "acme", "record_type": "contact", "external_id": "L-1"},
        format="json",
    )
    assert first.status_code == 201 and first.json()["record"]["name"].startswith("Hana")
    again = APIClient().post(
        "/api/v1/embed/session",
        {"token": token, "org": "acme", "record_type": "contact", "external_id": "L-1"},
        format="json",
    )
    assert again.json()["code"] == "replayed"


@pytest.mark.django_db
def test_stale_or_wrong_hubspot_signature_is_refused(org_a, hubspot):
    stale = int(time.time() * 1000) - 5 * 60 * 1000 - 1000
    assert _hubspot_post("hs-secret", timestamp=stale).json()["code"] == "stale"
    assert _hubspot_post("other-secret").json()["code"] == "bad_signature"
    assert _hubspot_post("hs-secret", signature=base64.b64encode(b"x" * 32).decode()).status_code == 403
    assert _hubspot_post("hs-secret", portal="999").status_code == 404
    assert LaunchToken.objects.count() == 0


# --- logs ---------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_no_launch_token_or_session_key_reaches_a_log_line(org_a, alice, leads, caplog):
    caplog.set_level(logging.DEBUG)
    client = embed_client(org_a)
    token = do_mint_launch_token(
        org_a, crm="generic", crm_user_id="", email="aaron@acme.test", record_type="lead", external_id="L-1"
    )
    logging.getLogger("quicksend.test").warning("launching %s with key %s", token, client.embed_key)
    APIClient().post(
        "/api/v1/embed/session",
        {"token": token, "org": "acme", "record_type": "lead", "external_id": "L-9"},
        format="json",
    )
    client.get("/api/v1/members")
    lines = [record.getMessage() for record in caplog.records]
    assert any("launching qsl.[redacted] with key qse_[redacted]" in line for line in lines)
    for line in lines:
        assert token not in line and client.embed_key not in line
    assert redact(f"GET /x#launch={token}") == "GET /x#launch=qsl.[redacted]"
    assert redact(f"Authorization: Embed {client.embed_key}") == "Authorization: Embed qse_[redacted]"
    assert "qse_[redacted]" in redact(f"subprotocol qs-embed-key.{client.embed_key}")


def test_every_embed_and_integrations_route_is_walked_by_the_isolation_harness():
    from tests.isolation import iter_url_routes

    routes = {route.template: route for route in iter_url_routes()[0]}
    for template in (
        "embed/{org}/r/{record_type}/{external_id}/",
        "embed/{org}/r/{record_type}/",
        "embed/{org}/phone/{phone}/",
        "embed/{org}/salesforce/canvas",
    ):
        assert routes[template].public, template  # answers anyone, never with data (the harness checks)
    assert not routes["settings/integrations/mappings/{mapping_id}/delete"].public
