"""The Twilio sandbox, driven through the official twilio library and its control API."""

from __future__ import annotations

import base64
import re

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from sandbox import demo
from tests.plugins.servers import wait_until

CUSTOMER = "+14155550123"


def twilio_error(excinfo) -> tuple[int, int]:
    return excinfo.value.status, excinfo.value.code


def assert_signed(request, url: str, token: str) -> None:
    assert RequestValidator(token).validate(url, request.form, request.headers["X-Twilio-Signature"])


# --- demo ------------------------------------------------------------------------------------------
def test_demo_credentials_have_twilio_shapes():
    for sid, token in (
        (demo.DEMO_ACCOUNT_SID, demo.DEMO_AUTH_TOKEN),
        (demo.DEMO_SUSPENDED_ACCOUNT_SID, demo.DEMO_SUSPENDED_AUTH_TOKEN),
        (demo.DEMO_CLOSED_ACCOUNT_SID, demo.DEMO_CLOSED_AUTH_TOKEN),
    ):
        assert re.fullmatch(r"AC[0-9a-f]{32}", sid)
        assert re.fullmatch(r"[0-9a-f]{32}", token)


def test_demo_account_exists_with_its_three_numbers(twilio_sandbox):
    client = twilio_sandbox.client(demo.DEMO_ACCOUNT_SID, demo.DEMO_AUTH_TOKEN)
    assert client.api.v2010.accounts(demo.DEMO_ACCOUNT_SID).fetch().status == "active"
    numbers = {n.phone_number: n for n in client.incoming_phone_numbers.stream()}
    assert set(numbers) == {demo.DEMO_LOCAL_NUMBER, demo.DEMO_TOLLFREE_NUMBER, demo.DEMO_SHORT_CODE}
    assert numbers[demo.DEMO_LOCAL_NUMBER].friendly_name == "Acme Main Line (415)"
    assert numbers[demo.DEMO_LOCAL_NUMBER].capabilities == {
        "voice": True,
        "sms": True,
        "mms": True,
        "fax": False,
    }
    assert (
        numbers[demo.DEMO_SHORT_CODE].capabilities["sms"]
        and not numbers[demo.DEMO_SHORT_CODE].capabilities["mms"]
    )


@pytest.mark.parametrize(
    ("sid", "token", "status"),
    [
        (demo.DEMO_SUSPENDED_ACCOUNT_SID, demo.DEMO_SUSPENDED_AUTH_TOKEN, "suspended"),
        (demo.DEMO_CLOSED_ACCOUNT_SID, demo.DEMO_CLOSED_AUTH_TOKEN, "closed"),
    ],
)
def test_demo_inactive_accounts_report_their_status(twilio_sandbox, sid, token, status):
    client = twilio_sandbox.client(sid, token)
    assert client.api.v2010.accounts(sid).fetch().status == status


# --- accounts and credentials ----------------------------------------------------------------------
def test_settings_point_the_app_at_the_sandbox(twilio_sandbox, settings):
    assert settings.TWILIO_API_BASE_URL == twilio_sandbox.base_url
    assert twilio_sandbox.base_url.endswith("/sandbox")


def test_wrong_token_is_401_with_code_20003(twilio_sandbox):
    sid, _token = twilio_sandbox.new_account()
    client = twilio_sandbox.client(sid, "0" * 32)
    with pytest.raises(TwilioRestException) as excinfo:
        client.api.v2010.accounts(sid).fetch()
    assert twilio_error(excinfo) == (401, 20003)


def test_credentials_of_one_account_cannot_read_another(twilio_sandbox):
    sid_a, token_a = twilio_sandbox.new_account()
    sid_b, _ = twilio_sandbox.new_account()
    client = twilio_sandbox.client(sid_a, token_a)
    with pytest.raises(TwilioRestException) as excinfo:
        client.api.v2010.accounts(sid_b).fetch()
    assert twilio_error(excinfo) == (401, 20003)


def test_new_account_can_be_created_suspended(twilio_sandbox):
    sid, token = twilio_sandbox.new_account(status="suspended")
    assert twilio_sandbox.client(sid, token).api.v2010.accounts(sid).fetch().status == "suspended"


def test_unknown_message_is_404_with_code_20404(twilio_sandbox):
    sid, token = twilio_sandbox.new_account()
    with pytest.raises(TwilioRestException) as excinfo:
        twilio_sandbox.client(sid, token).messages("SM" + "0" * 32).fetch()
    assert twilio_error(excinfo) == (404, 20404)


# --- numbers ---------------------------------------------------------------------------------------
def test_numbers_are_listed_across_pages(twilio_sandbox):
    sid, token = twilio_sandbox.new_account()
    added = {twilio_sandbox.add_number(sid)["phone_number"] for _ in range(5)}
    client = twilio_sandbox.client(sid, token)
    first = client.incoming_phone_numbers.page(page_size=2)
    assert len(list(first)) == 2 and first.next_page_url
    assert {n.phone_number for n in client.incoming_phone_numbers.stream(page_size=2)} == added


def test_number_sms_url_is_configured_through_the_api(twilio_sandbox):
    sid, token = twilio_sandbox.new_account()
    number = twilio_sandbox.add_number(sid, friendly_name="Support")
    client = twilio_sandbox.client(sid, token)
    updated = client.incoming_phone_numbers(number["sid"]).update(
        sms_url="https://example.test/api/incoming-sms", sms_method="POST"
    )
    assert updated.sms_url == "https://example.test/api/incoming-sms"
    assert client.incoming_phone_numbers(number["sid"]).fetch().sms_method == "POST"


# --- sending ---------------------------------------------------------------------------------------
def test_message_goes_through_its_lifecycle_with_signed_callbacks(twilio_sandbox, webhook_receiver):
    sid, token = twilio_sandbox.new_account()
    number = twilio_sandbox.add_number(sid)
    client = twilio_sandbox.client(sid, token)
    callback = webhook_receiver.url("/status")
    message = client.messages.create(
        to=CUSTOMER, from_=number["phone_number"], body="Hello from the sandbox", status_callback=callback
    )
    assert message.status == "queued" and message.sid.startswith("SM")
    wait_until(lambda: len(webhook_receiver.at("/status")) == 3)
    statuses = [r.form["MessageStatus"] for r in webhook_receiver.at("/status")]
    assert statuses == ["sending", "sent", "delivered"]
    for request in webhook_receiver.at("/status"):
        assert_signed(request, callback, token)
        assert request.form["MessageSid"] == message.sid and request.form["AccountSid"] == sid
    assert client.messages(message.sid).fetch().status == "delivered"
    received = twilio_sandbox.received(CUSTOMER)
    assert any(m["sid"] == message.sid and m["body"] == "Hello from the sandbox" for m in received)


@pytest.mark.parametrize(
    ("to", "final", "code"),
    [
        ("+15005553003", "undelivered", 30003),
        ("+15005553005", "undelivered", 30005),
        ("+15005553006", "undelivered", 30006),
        ("+15005553007", "failed", 30007),
    ],
)
def test_designated_recipients_end_badly(twilio_sandbox, webhook_receiver, to, final, code):
    sid, token = twilio_sandbox.new_account()
    number = twilio_sandbox.add_number(sid)
    client = twilio_sandbox.client(sid, token)
    message = client.messages.create(
        to=to, from_=number["phone_number"], body="hi", status_callback=webhook_receiver.url("/s")
    )
    wait_until(lambda: any(r.form["MessageStatus"] == final for r in webhook_receiver.at("/s")))
    last = [r for r in webhook_receiver.at("/s") if r.form["MessageStatus"] == final][0]
    assert last.form["ErrorCode"] == str(code)
    fetched = client.messages(message.sid).fetch()
    assert (fetched.status, fetched.error_code) == (final, code)


@pytest.mark.parametrize(
    ("to", "from_", "code"),
    [
        ("+15005550001", None, 21211),
        ("not-a-number", None, 21211),
        ("+15005550004", None, 21610),
        ("+15005550009", None, 21614),
        ("+15005550002", None, 21612),
        ("+15005550003", None, 21408),
        (CUSTOMER, "+15005550001", 21212),
        (CUSTOMER, "+15005550007", 21606),
        (CUSTOMER, "+19995550100", 21606),
    ],
)
def test_synchronous_errors_are_400_with_twilio_codes(twilio_sandbox, to, from_, code):
    sid, token = twilio_sandbox.new_account()
    number = twilio_sandbox.add_number(sid)
    client = twilio_sandbox.client(sid, token)
    with pytest.raises(TwilioRestException) as excinfo:
        client.messages.create(to=to, from_=from_ or number["phone_number"], body="hi")
    assert twilio_error(excinfo) == (400, code)
    assert twilio_sandbox.messages(sid) == []


def test_body_over_1600_characters_is_21617(twilio_sandbox):
    sid, token = twilio_sandbox.new_account()
    number = twilio_sandbox.add_number(sid)
    with pytest.raises(TwilioRestException) as excinfo:
        twilio_sandbox.client(sid, token).messages.create(
            to=CUSTOMER, from_=number["phone_number"], body="x" * 1601
        )
    assert twilio_error(excinfo) == (400, 21617)


def test_number_of_another_account_cannot_send(twilio_sandbox):
    sid_a, token_a = twilio_sandbox.new_account()
    sid_b, _ = twilio_sandbox.new_account()
    foreign = twilio_sandbox.add_number(sid_b)
    with pytest.raises(TwilioRestException) as excinfo:
        twilio_sandbox.client(sid_a, token_a).messages.create(
            to=CUSTOMER, from_=foreign["phone_number"], body="x"
        )
    assert twilio_error(excinfo) == (400, 21606)


# --- inbound ---------------------------------------------------------------------------------------
def test_inbound_text_posts_a_signed_webhook_with_twilio_fields(twilio_sandbox, webhook_receiver):
    sid, token = twilio_sandbox.new_account()
    hook = webhook_receiver.url("/incoming-sms")
    number = twilio_sandbox.add_number(sid, sms_url=hook)
    picture = b"\x89PNG\r\n\x1a\n" + b"0" * 100
    result = twilio_sandbox.inbound(
        CUSTOMER, number["phone_number"], "Is the house still for sale?", [("image/png", picture)]
    )
    assert result["webhook"]["status_code"] == 200
    (request,) = webhook_receiver.at("/incoming-sms")
    assert_signed(request, hook, token)
    form = request.form
    assert form["From"] == CUSTOMER and form["To"] == number["phone_number"]
    assert form["Body"] == "Is the house still for sale?"
    assert form["AccountSid"] == sid and form["MessageSid"].startswith("MM")
    assert (form["NumMedia"], form["NumSegments"], form["FromCountry"]) == ("1", "1", "US")
    assert form["MediaContentType0"] == "image/png"
    assert "OptOutType" not in form
    # The media URL needs the account's credentials, like Twilio's.
    assert requests.get(form["MediaUrl0"], timeout=5).status_code == 401
    media = requests.get(form["MediaUrl0"], auth=(sid, token), timeout=5)
    assert media.status_code == 200 and media.content == picture
    assert media.headers["Content-Type"] == "image/png"


def test_twiml_reply_reaches_the_customer(twilio_sandbox, webhook_receiver):
    sid, _token = twilio_sandbox.new_account()
    webhook_receiver.reply(
        "/in",
        '<?xml version="1.0" encoding="UTF-8"?>'
        "<Response><Message>Thanks, we will call you</Message></Response>",
    )
    number = twilio_sandbox.add_number(sid, sms_url=webhook_receiver.url("/in"))
    customer = "+14155550142"
    twilio_sandbox.inbound(customer, number["phone_number"], "Hello")
    wait_until(lambda: twilio_sandbox.received(customer))
    (reply,) = twilio_sandbox.received(customer)
    assert (reply["body"], reply["from"], reply["direction"]) == (
        "Thanks, we will call you",
        number["phone_number"],
        "outbound-reply",
    )


def test_stop_blocks_sends_until_start(twilio_sandbox, webhook_receiver):
    sid, token = twilio_sandbox.new_account()
    number = twilio_sandbox.add_number(sid, sms_url=webhook_receiver.url("/in"))
    client = twilio_sandbox.client(sid, token)
    customer = "+14155550177"
    twilio_sandbox.inbound(customer, number["phone_number"], "  stop ")
    assert webhook_receiver.at("/in")[-1].form["OptOutType"] == "STOP"
    with pytest.raises(TwilioRestException) as excinfo:
        client.messages.create(to=customer, from_=number["phone_number"], body="Still there?")
    assert twilio_error(excinfo) == (400, 21610)
    twilio_sandbox.inbound(customer, number["phone_number"], "START")
    assert webhook_receiver.at("/in")[-1].form["OptOutType"] == "START"
    assert (
        client.messages.create(to=customer, from_=number["phone_number"], body="Welcome back").status
        == "queued"
    )


def test_media_content_is_base64_safe_through_the_control_api(twilio_sandbox):
    sid, _ = twilio_sandbox.new_account()
    number = twilio_sandbox.add_number(sid)
    payload = bytes(range(256))
    message = twilio_sandbox.inbound(CUSTOMER, number["phone_number"], "", [("application/pdf", payload)])
    assert requests.get(message["media"][0]["url"], timeout=5).content == payload
    assert base64.b64encode(payload)


def test_changes_to_the_demo_account_do_not_outlive_the_test(twilio_sandbox):
    client = twilio_sandbox.client(demo.DEMO_ACCOUNT_SID, demo.DEMO_AUTH_TOKEN)
    number = next(n for n in client.incoming_phone_numbers.list() if n.phone_number == demo.DEMO_LOCAL_NUMBER)
    client.incoming_phone_numbers(number.sid).update(sms_url="https://example.test/in")
    twilio_sandbox.control("POST", "/reset-demo")
    fresh = next(n for n in client.incoming_phone_numbers.list() if n.phone_number == demo.DEMO_LOCAL_NUMBER)
    assert fresh.sms_url == "" and fresh.friendly_name == "Acme Main Line (415)"
