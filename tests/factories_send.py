"""Fixtures and helpers of the send tests: an organization connected to a fresh sandbox account.

Import the fixtures into a test module (``from tests.factories_send import sandbox_line  # noqa: F401``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import requests

from messaging.models import MessagingSettings, PhoneNumber, TwilioAccount
from messaging.services import throttle
from tests.factories_messaging import PhoneNumberFactory, TwilioAccountFactory

# Tests that do not test the throttle: a segment refills in a microsecond (the bucket holds one segment).
FAST_RATES = {"local": 1e6, "tollfree": 1e6, "shortcode": 1e6, "mobile": 1e6, "unknown": 1e6}

# Small PNG / PDF files with real signatures (types are sniffed from content).
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
    b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@dataclass
class Line:
    """One organization's sandbox account and number, mirrored in our database."""

    sid: str
    token: str
    account: TwilioAccount
    number: PhoneNumber


def connect_line(sandbox, org, *, type: str = "local", mms: bool = True, default: bool = True) -> Line:  # noqa: A002
    sid, token = sandbox.new_account()
    remote = sandbox.add_number(sid, type=type, mms=mms)
    account = TwilioAccountFactory(organization=org, account_sid=sid, auth_token=token)
    number = PhoneNumberFactory(
        account=account,
        sid=remote["sid"],
        phone_number=remote["phone_number"],
        number_type=type,
        mms_capable=mms,
    )
    if default:
        MessagingSettings.objects.update_or_create(organization=org, defaults={"default_number": number})
    throttle.reset(number.pk)
    return Line(sid, token, account, number)


@pytest.fixture
def inline_tasks(monkeypatch):
    """Run Celery tasks inline in this process, in both modes (the worker tests use a real worker); in
    production mode nothing is left in the broker for a later test's worker to pick up."""
    from quicksend.celery import app

    monkeypatch.setattr(app.conf, "task_always_eager", True)
    monkeypatch.setattr(app.conf, "task_eager_propagates", True)


@pytest.fixture
def fast_rates(settings):
    settings.QUICKSEND_SEND_RATES = FAST_RATES


@pytest.fixture
def line(twilio_sandbox, org_a, fast_rates):
    """Acme connected to a fresh sandbox account with one local SMS+MMS number (the org default)."""
    found = connect_line(twilio_sandbox, org_a)
    twilio_sandbox.behaviour(
        found.sid, rates={"local": 1000, "tollfree": 1000, "shortcode": 1000}, delay_ms=[0, 1]
    )
    return found


def sandbox_messages(sandbox, line: Line) -> list[dict]:
    return sandbox.messages(line.sid)


def _account_url(sandbox, line: Line) -> str:
    return f"{sandbox.base_url}/2010-04-01/Accounts/{line.sid}.json"


def park_a_request(sandbox, line: Line) -> None:
    """A REST request the sandbox parks while ``hold_requests`` is on (it fills a concurrency limit of 1)."""
    try:
        requests.get(_account_url(sandbox, line), auth=(line.sid, line.token), timeout=30)
    except requests.RequestException:
        pass


def account_is_busy(sandbox, line: Line) -> bool:
    """True once the account answers 429 (its concurrency limit is taken by a parked request)."""
    try:
        response = requests.get(_account_url(sandbox, line), auth=(line.sid, line.token), timeout=2)
    except requests.RequestException:
        return False  # this probe was parked itself; the next one finds the account busy
    return response.status_code == 429


API_MESSAGES_URL = "/api/v1/messages"


@pytest.fixture
def committing_api(token_client_for, alice, org_a, django_capture_on_commit_callbacks):
    """Alice's token client, whose sends run what follows their commit (as outside a test transaction)."""
    client = token_client_for(alice, org_a)
    post = client.post

    def post_and_commit(*args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return post(*args, **kwargs)

    client.post = post_and_commit
    return client


def api_send(api, to: str, body: str = "Your table is ready") -> int:
    """Send one text through ``POST /api/v1/messages``; the new message's id."""
    response = api.post(API_MESSAGES_URL, {"to": to, "body": body}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]
