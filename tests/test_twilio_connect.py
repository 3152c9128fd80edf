"""Connecting a Twilio account from the settings page, against the real sandbox over HTTP."""

from __future__ import annotations

import json
import logging

import pytest
from django.urls import reverse

from messaging.models import PhoneNumber, TwilioAccount
from messaging.twilio import accounts as twilio_accounts
from messaging.twilio.client import client_for_account
from tenancy.models import AuditLog
from tests.plugins.servers import free_port

SUCCESS = "Twilio credentials verified and saved successfully."
AUTH_FAILED = "Authentication failed. Please check your Twilio SID and Auth Token."
URL = "/settings/twilio/"


def connect(client, sid, token, name=""):
    return client.post(
        URL, {"op": "connect", "account_sid": sid, "auth_token": token, "friendly_name": name}, follow=True
    )


def page_text(response) -> str:
    return response.content.decode()


@pytest.mark.django_db
def test_admin_connects_an_account_and_sees_its_numbers(alice_client, org_a, twilio_sandbox):
    sid, token = twilio_sandbox.new_account(friendly_name="Acme main")
    local = twilio_sandbox.add_number(sid, friendly_name="Front desk")["phone_number"]
    tollfree = twilio_sandbox.add_number(sid, "+18005550111", type="tollfree", friendly_name="Hotline")[
        "phone_number"
    ]
    voice = twilio_sandbox.add_number(sid, friendly_name="Voice only", sms=False, mms=False)["phone_number"]

    response = connect(alice_client, sid, token)

    assert SUCCESS in page_text(response)
    account = TwilioAccount.objects.get(organization=org_a)
    assert account.account_sid == sid
    assert account.status == TwilioAccount.Status.VALID
    assert account.friendly_name == "Acme main"
    assert account.last_validated_at is not None
    assert account.last_validation_result.startswith("Verified")
    numbers = {n.phone_number: n for n in PhoneNumber.objects.filter(organization=org_a)}
    assert set(numbers) == {local, tollfree, voice}
    assert numbers[local].friendly_name == "Front desk"
    assert numbers[local].number_type == PhoneNumber.NumberType.LOCAL
    assert numbers[tollfree].number_type == PhoneNumber.NumberType.TOLL_FREE
    assert numbers[voice].sms_capable is False
    html = page_text(response)
    assert "Front desk" in html and "Hotline" in html and "Not SMS-capable" in html
    # Shown masked, never in clear.
    assert token not in html
    assert "•" * 12 + token[-4:] in html


@pytest.mark.django_db
def test_the_token_is_encrypted_at_rest(alice_client, org_a, twilio_sandbox):
    sid, token = twilio_sandbox.new_account()
    connect(alice_client, sid, token)
    account = TwilioAccount.objects.get(organization=org_a)
    assert token not in account.auth_token_encrypted
    assert account.get_auth_token() == token


@pytest.mark.django_db
def test_wrong_token_shows_the_exact_failure_and_stores_nothing(alice_client, org_a, twilio_sandbox):
    sid, _token = twilio_sandbox.new_account()
    twilio_sandbox.add_number(sid)
    response = connect(alice_client, sid, "0" * 32)
    assert response.status_code == 200
    assert AUTH_FAILED in page_text(response)
    assert SUCCESS not in page_text(response)
    assert not TwilioAccount.objects.exists()
    assert not PhoneNumber.objects.exists()
    # The typed token is not sent back into the form.
    assert "0" * 32 not in page_text(response)


@pytest.mark.django_db
@pytest.mark.parametrize("bad_sid", ["", "AC123", "XX" + "a" * 32, "AC" + "g" * 32, "AC" + "a" * 33])
def test_malformed_sid_is_refused_before_any_request(alice_client, settings, bad_sid):
    # Nothing listens there: had a request been made, the message would be "could not be reached".
    settings.TWILIO_API_BASE_URL = f"http://127.0.0.1:{free_port()}/sandbox"
    response = connect(alice_client, bad_sid, "a" * 32)
    text = page_text(response)
    if bad_sid:
        assert "That Account SID is not valid: it starts with AC followed by 32" in text
    assert "could not be reached" not in text
    assert not TwilioAccount.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("status, words", [("suspended", "suspended"), ("closed", "closed")])
def test_suspended_or_closed_account_is_refused(alice_client, twilio_sandbox, status, words):
    sid, token = twilio_sandbox.new_account(status=status)
    text = page_text(connect(alice_client, sid, token))
    assert f"Twilio says this account is {words}" in text
    assert "Nothing was saved." in text
    assert not TwilioAccount.objects.exists()


@pytest.mark.django_db
def test_unreachable_twilio_is_reported_and_nothing_saved(alice_client, settings):
    settings.TWILIO_API_BASE_URL = f"http://127.0.0.1:{free_port()}/sandbox"
    text = page_text(connect(alice_client, "AC" + "a" * 32, "b" * 32))
    assert "Twilio could not be reached" in text
    assert not TwilioAccount.objects.exists()


@pytest.mark.django_db
def test_twilio_timing_out_is_reported_and_nothing_saved(alice_client, twilio_sandbox, settings):
    sid, token = twilio_sandbox.new_account()
    twilio_sandbox.behaviour(sid, latency_ms=3000)
    settings.TWILIO_HTTP_TIMEOUT = 0.3
    text = page_text(connect(alice_client, sid, token))
    assert "Twilio did not answer within 0.3 seconds (timed out)" in text
    assert not TwilioAccount.objects.exists()


@pytest.mark.django_db
def test_an_organization_may_connect_several_accounts(alice_client, org_a, twilio_sandbox):
    for _ in range(2):
        sid, token = twilio_sandbox.new_account()
        twilio_sandbox.add_number(sid)
        assert SUCCESS in page_text(connect(alice_client, sid, token))
    assert TwilioAccount.objects.filter(organization=org_a).count() == 2
    assert PhoneNumber.objects.filter(organization=org_a).count() == 2


@pytest.mark.django_db
def test_the_same_account_twice_in_one_org_is_refused(alice_client, twilio_sandbox):
    sid, token = twilio_sandbox.new_account()
    connect(alice_client, sid, token)
    text = page_text(connect(alice_client, sid, token))
    assert "This Twilio account is already connected." in text
    assert TwilioAccount.objects.count() == 1


@pytest.mark.django_db
def test_an_account_connected_to_another_org_is_refused(alice_client, bob_client, twilio_sandbox, org_a):
    sid, token = twilio_sandbox.new_account()
    connect(bob_client, sid, token)
    text = page_text(connect(alice_client, sid, token))
    assert "connected to another QuickSend organization" in text
    assert not TwilioAccount.objects.filter(organization=org_a).exists()


@pytest.mark.django_db
def test_someone_without_the_token_does_not_learn_the_account_is_used_elsewhere(
    alice_client, bob_client, twilio_sandbox
):
    sid, token = twilio_sandbox.new_account()
    connect(bob_client, sid, token)
    text = page_text(connect(alice_client, sid, "f" * 32))
    assert AUTH_FAILED in text
    assert "another QuickSend organization" not in text


@pytest.mark.django_db
def test_validate_again_records_status_and_result(alice_client, org_a, twilio_sandbox):
    sid, token = twilio_sandbox.new_account()
    connect(alice_client, sid, token)
    account = TwilioAccount.objects.get(organization=org_a)
    first_check = account.last_validated_at

    twilio_sandbox.set_status(sid, "suspended")
    response = alice_client.post(
        reverse("settings-twilio-account", args=[account.pk]), {"op": "validate"}, follow=True
    )
    account.refresh_from_db()
    assert account.status == TwilioAccount.Status.INVALID
    assert "suspended" in account.last_validation_result
    assert account.last_validated_at > first_check
    assert "Invalid" in page_text(response)

    twilio_sandbox.set_status(sid, "active")
    alice_client.post(reverse("settings-twilio-account", args=[account.pk]), {"op": "validate"})
    account.refresh_from_db()
    assert account.status == TwilioAccount.Status.VALID
    assert AuditLog.objects.filter(organization=org_a, action="twilio_account.validated").count() == 2


@pytest.mark.django_db
def test_validate_again_while_twilio_is_unreachable_keeps_the_status(
    alice_client, org_a, twilio_sandbox, settings
):
    sid, token = twilio_sandbox.new_account()
    connect(alice_client, sid, token)
    account = TwilioAccount.objects.get(organization=org_a)
    settings.TWILIO_API_BASE_URL = f"http://127.0.0.1:{free_port()}/sandbox"
    alice_client.post(reverse("settings-twilio-account", args=[account.pk]), {"op": "validate"})
    account.refresh_from_db()
    assert account.status == TwilioAccount.Status.VALID
    assert "could not be reached" in account.last_validation_result


@pytest.mark.django_db
def test_replacing_the_token_verifies_it_first(alice_client, org_a, twilio_sandbox):
    sid, token = twilio_sandbox.new_account()
    connect(alice_client, sid, token)
    account = TwilioAccount.objects.get(organization=org_a)
    response = alice_client.post(
        reverse("settings-twilio-account", args=[account.pk]),
        {"op": "token", "auth_token": "e" * 32},
        follow=True,
    )
    assert AUTH_FAILED in page_text(response)
    account.refresh_from_db()
    assert account.get_auth_token() == token


@pytest.mark.django_db
def test_disconnecting_removes_the_account_and_its_numbers(alice_client, org_a, twilio_sandbox):
    sid, token = twilio_sandbox.new_account()
    twilio_sandbox.add_number(sid)
    connect(alice_client, sid, token)
    account = TwilioAccount.objects.get(organization=org_a)
    alice_client.post(reverse("settings-twilio-account", args=[account.pk]), {"op": "delete"})
    assert not TwilioAccount.objects.exists()
    assert not PhoneNumber.objects.exists()
    assert AuditLog.objects.filter(action="twilio_account.deleted", object_id=str(account.pk)).exists()


# --- numbers sync --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_number_sync_reads_every_page(alice_client, org_a, twilio_sandbox, monkeypatch):
    monkeypatch.setattr(twilio_accounts, "NUMBERS_PAGE_SIZE", 3)
    sid, token = twilio_sandbox.new_account()
    added = {twilio_sandbox.add_number(sid)["phone_number"] for _ in range(8)}
    connect(alice_client, sid, token)
    assert set(PhoneNumber.objects.filter(organization=org_a).values_list("phone_number", flat=True)) == added


@pytest.mark.django_db
def test_refresh_adds_new_numbers_and_deactivates_removed_ones(alice_client, org_a, twilio_sandbox):
    sid, token = twilio_sandbox.new_account()
    keep = twilio_sandbox.add_number(sid, friendly_name="Keep")
    gone = twilio_sandbox.add_number(sid, friendly_name="Gone")
    connect(alice_client, sid, token)
    account = TwilioAccount.objects.get(organization=org_a)
    gone_row = PhoneNumber.objects.get(sid=gone["sid"])
    alice_client.post(URL, {"op": "settings", "default_number": gone_row.pk})
    assert account.organization.messaging_settings.default_number_id == gone_row.pk

    twilio_sandbox.remove_number(sid, gone["sid"])
    new = twilio_sandbox.add_number(sid, friendly_name="New")
    response = alice_client.post(
        reverse("settings-twilio-account", args=[account.pk]), {"op": "refresh"}, follow=True
    )

    assert "Numbers of" in page_text(response)
    rows = {n.sid: n for n in PhoneNumber.objects.filter(organization=org_a)}
    assert rows[keep["sid"]].is_active
    assert rows[new["sid"]].is_active and rows[new["sid"]].friendly_name == "New"
    assert rows[gone["sid"]].is_active is False  # deactivated, not deleted
    account.organization.messaging_settings.refresh_from_db()
    assert account.organization.messaging_settings.default_number_id is None


@pytest.mark.django_db
def test_configure_this_number_for_me_sets_the_sms_url_at_twilio(
    alice_client, org_a, twilio_sandbox, settings
):
    sid, token = twilio_sandbox.new_account()
    pn = twilio_sandbox.add_number(sid, sms_url="https://elsewhere.example/hook", sms_method="GET")
    connect(alice_client, sid, token)
    number = PhoneNumber.objects.get(sid=pn["sid"])
    assert number.sms_url == "https://elsewhere.example/hook"

    response = alice_client.post(
        reverse("settings-twilio-number", args=[number.pk]), {"op": "configure"}, follow=True
    )

    expected = settings.PUBLIC_BASE_URL + "/api/incoming-sms"
    at_twilio = (
        client_for_account(number.account).api.v2010.accounts(sid).incoming_phone_numbers(pn["sid"]).fetch()
    )
    assert at_twilio.sms_url == expected
    assert at_twilio.sms_method == "POST"
    number.refresh_from_db()
    assert (number.sms_url, number.sms_method) == (expected, "POST")
    assert "now sends incoming texts to" in page_text(response)
    assert AuditLog.objects.filter(
        action="phone_number.webhook_configured", object_id=str(number.pk)
    ).exists()


@pytest.mark.django_db
def test_configure_with_a_stale_number_sid_resyncs_and_retries(alice_client, org_a, twilio_sandbox):
    sid, token = twilio_sandbox.new_account()
    pn = twilio_sandbox.add_number(sid)
    connect(alice_client, sid, token)
    number = PhoneNumber.objects.get(sid=pn["sid"])
    PhoneNumber.objects.filter(pk=number.pk).update(sid="PN" + "0" * 32, label="Kept label")
    alice_client.post(reverse("settings-twilio-number", args=[number.pk]), {"op": "configure"})
    number.refresh_from_db()
    assert number.sid == pn["sid"]
    assert number.label == "Kept label"
    assert number.sms_url.endswith("/api/incoming-sms")


@pytest.mark.django_db
def test_the_webhook_panel_shows_both_urls_with_copy_buttons(alice_client, settings):
    html = page_text(alice_client.get(URL))
    base = settings.PUBLIC_BASE_URL
    assert (
        f'<code id="incoming-sms-url" data-testid="incoming-sms-url">{base}/api/incoming-sms</code>' in html
    )
    assert (
        f'<code id="status-callback-url" data-testid="status-callback-url">{base}/api/status-callback</code>'
        in html
    )
    assert 'data-copy="#incoming-sms-url"' in html and 'data-copy="#status-callback-url"' in html
    assert "Phone Numbers → Manage → Active numbers" in html


# --- the token never leaks ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_token_never_reaches_logs_audit_or_api(alice_client, org_a, twilio_sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="twilio.http_client")  # the library's own request logs too
    sid, token = twilio_sandbox.new_account()
    pn = twilio_sandbox.add_number(sid)
    connect(alice_client, sid, "1" * 32)  # a failure first
    connect(alice_client, sid, token)
    account = TwilioAccount.objects.get(organization=org_a)
    number = PhoneNumber.objects.get(sid=pn["sid"])
    alice_client.post(reverse("settings-twilio-account", args=[account.pk]), {"op": "validate"})
    alice_client.post(reverse("settings-twilio-account", args=[account.pk]), {"op": "refresh"})
    alice_client.post(reverse("settings-twilio-number", args=[number.pk]), {"op": "configure"})
    alice_client.post(
        reverse("settings-twilio-account", args=[account.pk]), {"op": "token", "auth_token": token}
    )
    api = [
        alice_client.get("/api/v1/twilio-accounts"),
        alice_client.get(f"/api/v1/twilio-accounts/{account.pk}"),
        alice_client.get("/api/v1/numbers"),
        alice_client.get(f"/admin/messaging/twilioaccount/{account.pk}/change/"),
    ]

    assert caplog.records, "the flow logs nothing: the check would be vacuous"
    logged = "\n".join(r.getMessage() + repr(r.args) for r in caplog.records)
    assert token not in logged
    audit_rows = list(AuditLog.objects.filter(organization=org_a).values("changes", "object_repr"))
    assert len(audit_rows) >= 5
    assert token not in json.dumps(audit_rows)
    for response in api[:3]:
        assert response.status_code == 200
        assert token not in response.content.decode()


@pytest.mark.django_db
def test_the_debug_error_page_does_not_show_the_token(alice_client, settings, monkeypatch, twilio_sandbox):
    settings.DEBUG = True
    sid, token = twilio_sandbox.new_account()

    def explode(*args, **kwargs):
        raise RuntimeError("unexpected failure while talking to Twilio")

    monkeypatch.setattr(twilio_accounts, "fetch_numbers", explode)
    alice_client.raise_request_exception = False
    response = alice_client.post(URL, {"op": "connect", "account_sid": sid, "auth_token": token})
    assert response.status_code == 500
    body = response.content.decode()
    assert "unexpected failure while talking to Twilio" in body  # it is the technical page
    assert token not in body


@pytest.mark.django_db
def test_agents_cannot_open_the_twilio_settings(aaron_client, org_a):
    assert aaron_client.get(URL).status_code == 403
    assert (
        aaron_client.post(
            URL, {"op": "connect", "account_sid": "AC" + "a" * 32, "auth_token": "x"}
        ).status_code
        == 403
    )
