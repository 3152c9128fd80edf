"""The record widget embedded in a CRM's page, in a real browser: Chromium with third-party cookies blocked
(and, in the second test, with every cookie refused), the app under uvicorn (production mode: PostgreSQL,
Redis, a Celery worker) with the standalone Twilio sandbox, and a second local server on another site standing
in for each CRM (Zoho, Dynamics 365, Salesforce Canvas, HubSpot, a generic one). Each CRM stand-in does what
that CRM does server-side (a connector or plug-in calling our mint API with an API token, a Canvas signed
request, a v3-signed hubspot.fetch) and frames the returned URL. The agent texts the record and sees the
reply live. Framing from an unlisted origin is refused. The server's logs of the whole run hold no launch
token and no session key. Screenshots at 320, 375 and 1366 px go to var/screenshots/."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from django.conf import settings

from messaging.twilio.public_urls import INCOMING_SMS_PATH
from tenancy.embed import do_save_embed_settings
from tenancy.embed_signatures import hubspot_v3_signature
from tenancy.models import LaunchToken
from tenancy.services import do_create_api_token
from tests.factories_crm import ContactFactory, LeadFactory
from tests.factories_messaging import PhoneNumberFactory, TwilioAccountFactory
from tests.plugins import servers
from tests.plugins.browser import CHROMIUM_ARGS, playwright
from tests.plugins.sandbox import fresh_phone_number
from tests.plugins.servers import wait_until

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
DYNAMICS_GUID = "{6F9619FF-8B86-D011-B42D-00C04FC964FF}"


class CrmStandIn:
    """A CRM's page on another site (``http://localhost:<port>``): it gets a launch URL the way that CRM
    does, server-side, and frames it. ``minted`` keeps every token it was given (for the log scrub)."""

    def __init__(self, app_url: str, api_key: str, secrets: dict, records: dict):
        self.app_url, self.api_key, self.secrets, self.records = app_url, api_key, secrets, records
        self.minted: list[str] = []
        self.referers: list[str] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                stand_in.referers.append(self.headers.get("Referer", ""))
                crm = self.path.strip("/").split("?")[0]
                if crm not in ("zoho", "dynamics", "salesforce", "hubspot", "generic"):
                    self.send_response(404)
                    self.end_headers()
                    return
                body = stand_in.page(crm).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://localhost:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()

    def _mint(self, body: dict) -> str:
        answer = requests.post(
            f"{self.app_url}/api/v1/embed/tokens",
            json=body,
            headers={"Authorization": f"Token {self.api_key}"},
            timeout=10,
        )
        assert answer.status_code == 201, answer.text
        self.minted.append(answer.json()["token"])
        return answer.json()["url"]

    def launch_url(self, crm: str) -> str:
        if crm == "zoho":  # the widget's connector calls our API with the PageLoad context
            return self._mint(
                {
                    "crm": "zoho",
                    "email": "aaron@acme.test",
                    "crm_user_id": "4150868000000225013",
                    "record_type": "Leads",
                    "external_id": self.records["zoho"],
                }
            )
        if crm == "dynamics":  # a plug-in / flow calls our API with the form's entity and {GUID} id
            return self._mint(
                {
                    "crm": "dynamics",
                    "email": "aaron@acme.test",
                    "crm_user_id": "{1B2C3D4E-0000-0000-0000-00000000AAAA}",
                    "record_type": "lead",
                    "external_id": DYNAMICS_GUID,
                }
            )
        if crm == "generic":
            return self._mint(
                {"email": "aaron@acme.test", "record_type": "lead", "external_id": self.records["generic"]}
            )
        if crm == "hubspot":  # HubSpot's proxy signs the card's hubspot.fetch (v3) and adds the user
            body = json.dumps({"objectId": self.records["hubspot"], "objectTypeId": "0-1"}).encode()
            query = "?userId=991&userEmail=aaron%40acme.test&portalId=4412&appId=77"
            uri = f"{self.app_url}/api/v1/embed/hubspot/launch{query}"
            timestamp = str(int(time.time() * 1000))
            signature = hubspot_v3_signature(self.secrets["hubspot"], "POST", uri, body, timestamp)
            answer = requests.post(
                uri,
                data=body,
                timeout=10,
                headers={
                    "Content-Type": "application/json",
                    "X-HubSpot-Signature-v3": signature,
                    "X-HubSpot-Request-Timestamp": timestamp,
                },
            )
            assert answer.status_code == 201, answer.text
            self.minted.append(answer.json()["token"])
            return answer.json()["url"]
        raise AssertionError(crm)

    def canvas_signed_request(self) -> str:
        envelope = {
            "algorithm": "HMACSHA256",
            "userId": "005xx000001Sv6AAAS",
            "context": {
                "user": {"userId": "005xx000001Sv6AAAS", "email": "aaron@acme.test"},
                "environment": {"parameters": {"recordId": self.records["salesforce"], "recordType": "Lead"}},
            },
        }
        encoded = base64.b64encode(json.dumps(envelope).encode()).decode()
        key = self.secrets["salesforce"].encode()
        signature = base64.b64encode(hmac.new(key, encoded.encode(), hashlib.sha256).digest()).decode()
        return f"{signature}.{encoded}"

    def page(self, crm: str) -> str:
        style = "<style>body{margin:0}iframe{border:0;width:100vw;height:100vh;display:block}</style>"
        if crm == "salesforce":  # the Canvas container posts the signed request into the app's frame
            action = f"{self.app_url}/embed/acme/salesforce/canvas"
            return (
                f"<!doctype html><html><head>{style}</head><body>"
                f"<form id=canvas method=post target=qs action='{action}'>"
                f"<input type=hidden name=signed_request value='{self.canvas_signed_request()}'></form>"
                "<iframe name=qs title=QuickSend></iframe>"
                "<script>document.getElementById('canvas').submit()</script></body></html>"
            )
        url = self.launch_url(crm)
        return (
            f"<!doctype html><html><head>{style}</head><body>"
            f"<iframe title=QuickSend src='{url}'></iframe></body></html>"
        )


@pytest.fixture
def app_server(request, tmp_path, monkeypatch, twilio_sandbox, transactional_db):
    port = servers.free_port()
    monkeypatch.setattr(servers, "free_port", lambda: port)
    env = {"TWILIO_API_BASE_URL": twilio_sandbox.base_url, "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    server = servers.start_asgi_server(tmp_path, extra_env=env)
    worker = None
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        worker = request.getfixturevalue("celery_worker_process")
    server.worker = worker
    yield server
    server.stop()


@pytest.fixture
def crm_world(twilio_sandbox, app_server, org_a, alice, aaron):
    """Org A's sandbox number assigned to Aaron; one record per CRM (its own mobile number); the CRM stand-in
    allowed to frame the widget."""
    sid, token = twilio_sandbox.new_account()
    sandbox_number = twilio_sandbox.add_number(sid, sms_url=app_server.base_url + INCOMING_SMS_PATH)
    account = TwilioAccountFactory(organization=org_a, account_sid=sid, auth_token=token)
    number = PhoneNumberFactory(
        account=account, phone_number=sandbox_number["phone_number"], label="Sales line"
    )
    number.assigned_members.add(aaron.memberships.get(organization=org_a))
    ids = {
        "zoho": "4150868000001234001",
        "dynamics": DYNAMICS_GUID.strip("{}").lower(),
        "salesforce": "00Q5e00000AbCdEEAZ",
        "hubspot": "51",
        "generic": "intranet-77",
    }
    records = {}
    for crm, external_id in ids.items():
        factory = ContactFactory if crm == "hubspot" else LeadFactory
        records[crm] = factory(
            organization=org_a,
            owner=aaron,
            first_name=crm.title(),
            last_name="Lopez",
            mobile_phone=fresh_phone_number(),
            external_id=external_id,
        )
    _token, api_key = do_create_api_token(alice, org_a, "CRM connector")
    secrets = {"salesforce": "canvas-consumer-secret", "hubspot": "hubspot-client-secret"}
    stand_in = CrmStandIn(
        app_server.base_url, api_key, secrets, {c: r.external_id for c, r in records.items()}
    )
    unlisted = CrmStandIn(
        app_server.base_url, api_key, secrets, {c: r.external_id for c, r in records.items()}
    )
    do_save_embed_settings(
        org_a,
        alice,
        allowed_origins=[stand_in.origin],
        match_users_by_email=True,
        hubspot_portal_id="4412",
        salesforce_consumer_secret=secrets["salesforce"],
        hubspot_client_secret=secrets["hubspot"],
    )
    yield {"number": number, "records": records, "crm": stand_in, "unlisted": unlisted, "server": app_server}
    stand_in.close()
    unlisted.close()


def _browser(p, cookies: str):
    """Chromium with third-party cookies blocked ("third-party") or every cookie refused ("none"), the way a
    user sets it in chrome://settings/cookies."""
    profile = tempfile.mkdtemp(prefix="qs-embed-chromium-")
    os.makedirs(os.path.join(profile, "Default"))
    prefs = (
        {"profile": {"cookie_controls_mode": 1}}
        if cookies == "third-party"
        else {"profile": {"default_content_setting_values": {"cookies": 2}}}
    )
    with open(os.path.join(profile, "Default", "Preferences"), "w") as handle:
        json.dump(prefs, handle)
    context = p.chromium.launch_persistent_context(
        profile, executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
    )
    context.set_default_timeout(20_000)
    return context


class Watch:
    """What the browser sent and received that could leak: Referer headers, session keys it was given."""

    def __init__(self, page):
        self.referers: list[str] = []
        self.keys: list[str] = []
        page.on("request", lambda r: self.referers.append(r.headers.get("referer", "")))
        page.on("response", self._response)

    def _response(self, response):
        if response.url.endswith("/api/v1/embed/session") and response.status == 201:
            self.keys.append(response.json()["key"])


def _text_and_get_reply(page, frame, twilio_sandbox, record, number, words: str):
    frame.locator(".qs-text").wait_for()
    wait_until(lambda: frame.locator(".qs-text").is_enabled(), message="the composer stayed disabled")
    frame.locator(".qs-text").fill(words)
    frame.locator(".qs-text").press("Enter")
    frame.locator(".qs-out [data-testid=message-status]", has_text="Delivered").wait_for(timeout=30_000)
    customer = record.mobile_phone_e164
    wait_until(lambda: twilio_sandbox.received(customer), message="the sandbox phone got nothing")
    twilio_sandbox.inbound(customer, number.phone_number, f"Reply to {words}")
    frame.locator(".qs-in .qs-body", has_text=f"Reply to {words}").wait_for(timeout=30_000)


def _no_secret_in_logs(world, watch: Watch):
    logs = world["server"].log()
    if world["server"].worker is not None:
        logs += world["server"].worker.log()
    secrets = world["crm"].minted + world["unlisted"].minted + watch.keys
    assert secrets and watch.keys, "the run minted and exchanged nothing"
    assert "/embed/acme/" in logs  # the access log did record the embed page loads
    for secret in secrets:
        assert secret not in logs
        assert secret.split(".")[-1] not in logs  # not even its signature
    for referer in watch.referers + world["crm"].referers:
        assert "launch=" not in referer and "qsl." not in referer and "qse_" not in referer, referer


def _frame(page):
    return page.frame_locator("iframe")


def _screenshots(page, name: str):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width in (320, 375, 1366):
        page.set_viewport_size({"width": width, "height": 720})
        frame = page.frames[1]
        frame.locator(".qs-conv").wait_for()
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"))
        overflow = frame.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert overflow[0] <= overflow[1], f"the embed page overflows at {width} px: {overflow}"


@pytest.mark.browser
def test_each_crm_frames_the_widget_with_third_party_cookies_blocked(crm_world, twilio_sandbox):
    stand_in, records, number = crm_world["crm"], crm_world["records"], crm_world["number"]
    with playwright() as p:
        context = _browser(p, "third-party")
        page = context.new_page()
        watch = Watch(page)
        for crm in ("zoho", "dynamics", "salesforce", "hubspot", "generic"):
            page.goto(f"{stand_in.origin}/{crm}")
            frame = _frame(page)
            frame.locator(".qs-conv").wait_for()
            # The partitioned cookie held: no key is kept in the page.
            assert frame.locator("body[data-embed-auth=cookie]").count() == 1, crm
            assert page.frames[1].url.split("#")[0] == page.frames[1].url, "the token stayed in the address"
            assert "launch=" not in page.frames[1].evaluate("location.href")
            shown = frame.get_by_test_id("texting-number")
            shown.wait_for()
            assert records[crm].mobile_phone_e164[-4:] in shown.inner_text(), crm  # this CRM's record
            _text_and_get_reply(page, frame, twilio_sandbox, records[crm], number, f"Hello from {crm}")
            if crm == "zoho":
                _screenshots(page, "embed-zoho")
                page.set_viewport_size({"width": 1366, "height": 720})
        # A page the organization did not list cannot frame the widget, even with a valid launch.
        page.goto(f"{crm_world['unlisted'].origin}/generic")
        page.wait_for_load_state("load")
        blocked = page.frames[1]
        assert blocked.url.startswith("chrome-error://") or blocked.locator("[data-embed]").count() == 0
        assert LaunchToken.objects.filter(used_at__isnull=True).count() == 1  # its token was never exchanged
        context.close()
    _no_secret_in_logs(crm_world, watch)


@pytest.mark.browser
def test_with_every_cookie_refused_the_key_stays_in_memory_including_the_websocket(crm_world, twilio_sandbox):
    stand_in, records, number = crm_world["crm"], crm_world["records"], crm_world["number"]
    with playwright() as p:
        context = _browser(p, "none")
        page = context.new_page()
        watch = Watch(page)
        sockets = []
        page.on("websocket", lambda ws: sockets.append(ws.url))
        for crm in ("hubspot", "salesforce"):
            page.goto(f"{stand_in.origin}/{crm}")
            frame = _frame(page)
            frame.locator(".qs-conv").wait_for()
            assert frame.locator("body[data-embed-auth=memory]").count() == 1
            _text_and_get_reply(page, frame, twilio_sandbox, records[crm], number, f"Cookieless {crm}")
        assert sockets and all(url.endswith("/ws/embed/") for url in sockets), sockets
        assert page.frames[1].evaluate("() => document.cookie") == ""
        _screenshots(page, "embed-cookieless")
        context.close()
    _no_secret_in_logs(crm_world, watch)


@pytest.mark.browser
def test_integrations_settings_and_the_ask_your_admin_page_pass_the_page_checks(page, crm_world, alice):
    from tests.factories import PASSWORD
    from tests.page_checks import check_page, serious_violations

    base_url = crm_world["server"].base_url
    page.goto(base_url + "/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)
    page.goto(base_url + "/settings/integrations/")
    check_page(
        page, "settings-integrations", ready=lambda p: p.get_by_text("Texts inside your CRM").wait_for()
    )
    assert page.get_by_label("HubSpot (EU)").count() == 1  # each CRM's regions are offered

    # A CRM user nobody linked: the panel says who to ask and what to give them.
    url = crm_world["crm"]._mint(
        {
            "crm": "zoho",
            "email": "newhire@acme.test",
            "crm_user_id": "4150868000000999",
            "record_type": "Leads",
            "external_id": crm_world["records"]["zoho"].external_id,
        }
    )
    page.set_viewport_size({"width": 320, "height": 640})
    page.goto(url)
    page.get_by_role("heading", name="Ask your admin").wait_for()
    assert "4150868000000999" in page.inner_text("main") and "newhire@acme.test" in page.inner_text("main")
    assert "#" not in page.url
    assert not serious_violations(page)
    page.screenshot(path=str(SCREENSHOTS / "embed-ask-your-admin-320.png"))
