"""Where the sandbox runs: mounted in the app's ASGI server (embedded, or production with
QUICKSEND_SANDBOX=1), off in production otherwise; and the customer phone page in a real browser."""

from __future__ import annotations

import base64

import pytest
import requests
from django.conf import settings
from twilio.rest import Client

from sandbox import demo
from tests.plugins import servers
from tests.plugins.servers import start_asgi_server, wait_until


def sandbox_enabled_env() -> dict:
    return {} if settings.EMBEDDED else {"QUICKSEND_SANDBOX": "1"}


def test_app_server_serves_the_sandbox_beside_django(transactional_db, tmp_path):
    server = start_asgi_server(tmp_path, extra_env=sandbox_enabled_env())
    try:
        client = Client(demo.DEMO_ACCOUNT_SID, demo.DEMO_AUTH_TOKEN)
        client.api.base_url = server.base_url + "/sandbox"
        numbers = {n.phone_number for n in client.incoming_phone_numbers.list()}
        assert numbers == {demo.DEMO_LOCAL_NUMBER, demo.DEMO_TOLLFREE_NUMBER, demo.DEMO_SHORT_CODE}
        phone = requests.get(server.base_url + "/sandbox/phone/", timeout=5)
        assert phone.status_code == 200 and "script-src 'self'" in phone.headers["Content-Security-Policy"]
        assert requests.get(server.base_url + "/livez", timeout=5).status_code == 200  # Django still answers
    finally:
        server.stop()


def test_a_sync_view_of_the_app_can_call_its_own_mounted_sandbox(
    transactional_db, tmp_path, alice, org_a, monkeypatch
):
    """The deadlock trap: Django runs sync views on one thread; the sandbox mounted beside it must answer
    without that thread. Connecting the demo account through the API calls the sandbox from a sync view."""
    from messaging.models import PhoneNumber
    from tenancy.services import do_create_api_token

    port = servers.free_port()
    monkeypatch.setattr(servers, "free_port", lambda: port)
    own_sandbox = f"http://127.0.0.1:{port}/sandbox"
    server = start_asgi_server(
        tmp_path, extra_env={**sandbox_enabled_env(), "TWILIO_API_BASE_URL": own_sandbox}
    )
    try:
        _token, key = do_create_api_token(alice, org_a, "sandbox mount test")
        response = requests.post(
            f"{server.base_url}/api/v1/twilio-accounts",
            json={"account_sid": demo.DEMO_ACCOUNT_SID, "auth_token": demo.DEMO_AUTH_TOKEN},
            headers={"Authorization": f"Token {key}"},
            timeout=60,
        )
        assert response.status_code == 201, response.text
        numbers = set(PhoneNumber.objects.filter(organization=org_a).values_list("phone_number", flat=True))
        assert numbers == {demo.DEMO_LOCAL_NUMBER, demo.DEMO_TOLLFREE_NUMBER, demo.DEMO_SHORT_CODE}
    finally:
        server.stop()


def test_the_customer_phone_texts_a_demo_number_and_the_app_receives_it(
    transactional_db, tmp_path, org_a, monkeypatch
):
    """``make run``: the mounted sandbox's demo numbers post incoming texts to this app (no manual "Configure
    this number" first), signed with the demo account's token, and the app stores them."""
    from messaging.models import InboundEvent
    from sandbox.state import Store
    from tests.factories_messaging import PhoneNumberFactory, TwilioAccountFactory

    port = servers.free_port()
    monkeypatch.setattr(servers, "free_port", lambda: port)
    base = f"http://127.0.0.1:{port}"
    account = TwilioAccountFactory(
        organization=org_a, account_sid=demo.DEMO_ACCOUNT_SID, auth_token=demo.DEMO_AUTH_TOKEN
    )
    PhoneNumberFactory(account=account, phone_number=demo.DEMO_LOCAL_NUMBER)
    server = start_asgi_server(tmp_path, extra_env={**sandbox_enabled_env(), "PUBLIC_BASE_URL": base})
    try:
        answer = requests.post(
            base + "/sandbox/control/inbound",
            json={
                "from": "+12025550177",
                "to": demo.DEMO_LOCAL_NUMBER,
                "body": "Is it still free?",
                "wait": True,
            },
            timeout=30,
        ).json()
        assert answer["webhook"]["url"] == base + "/api/incoming-sms"
        assert answer["webhook"]["status_code"] == 200, answer["webhook"]
        assert InboundEvent.objects.filter(message_sid=answer["sid"], organization=org_a).exists()
    finally:
        server.stop()
    # A standalone sandbox keeps its demo numbers unconfigured; a reset keeps the mounted app's choice.
    store = Store()
    assert all(not n.sms_url for n in store.accounts[demo.DEMO_ACCOUNT_SID].numbers.values())
    store.point_demo_numbers("http://app.example/api/incoming-sms")
    store.reset_demo()
    urls = {n.sms_url for n in store.accounts[demo.DEMO_ACCOUNT_SID].numbers.values()}
    assert urls == {"http://app.example/api/incoming-sms"}


@pytest.mark.skipif("settings.EMBEDDED", reason="the embedded mode always has the sandbox")
def test_production_app_has_no_sandbox_unless_enabled(transactional_db, tmp_path):
    server = start_asgi_server(tmp_path, extra_env={"QUICKSEND_SANDBOX": "0"})
    try:
        response = requests.get(
            f"{server.base_url}/sandbox/2010-04-01/Accounts/{demo.DEMO_ACCOUNT_SID}.json",
            auth=(demo.DEMO_ACCOUNT_SID, demo.DEMO_AUTH_TOKEN),
            timeout=5,
        )
        assert response.status_code == 404
        assert requests.get(server.base_url + "/sandbox/control/health", timeout=5).status_code == 404
    finally:
        server.stop()


PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.mark.browser
def test_customer_phone_page_texts_a_number_and_shows_the_reply(
    page, twilio_sandbox, webhook_receiver, tmp_path
):
    sid, token = twilio_sandbox.new_account()
    webhook_receiver.reply("/in", "<Response><Message>Got your photo, thanks!</Message></Response>")
    number = twilio_sandbox.add_number(sid, friendly_name="Browser line", sms_url=webhook_receiver.url("/in"))
    picture = tmp_path / "house.png"
    picture.write_bytes(PNG)
    customer = "+14155550155"

    page.goto(twilio_sandbox.base_url + "/phone/")
    page.fill("#customer", customer)
    page.select_option("#sandbox-number", number["phone_number"])
    page.fill("#body", "Here is the house")
    page.set_input_files("#media", str(picture))
    page.click("#send")
    page.wait_for_selector(".bubble.theirs >> text=Got your photo, thanks!")
    assert page.locator(".bubble.mine .text").first.text_content() == "Here is the house"
    assert page.locator(".bubble.mine img").count() == 1

    (request,) = webhook_receiver.at("/in")
    assert (request.form["From"], request.form["Body"], request.form["NumMedia"]) == (
        customer,
        "Here is the house",
        "1",
    )
    media = requests.get(request.form["MediaUrl0"], auth=(sid, token), timeout=5)
    assert media.content == PNG and media.headers["Content-Type"] == "image/png"
    wait_until(lambda: twilio_sandbox.received(customer))
