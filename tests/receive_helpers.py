"""Helpers for the receiving tests: signed Twilio webhooks, an account with a known token, eager tasks."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

import pytest
from django.conf import settings
from twilio.request_validator import RequestValidator

from messaging.twilio.public_urls import INCOMING_SMS_PATH, STATUS_CALLBACK_PATH
from messaging.twilio.signatures import forget_cached_tokens
from tests.factories_messaging import PhoneNumberFactory, TwilioAccountFactory


def sign(token: str, url: str, params: dict) -> str:
    return RequestValidator(token).compute_signature(url, params)


def post_webhook(client, path: str, params: dict, token: str | None, *, query: str = "", signature=None):
    """POST a form to one of our webhooks the way Twilio does: signed with ``token`` over PUBLIC_BASE_URL."""
    url = settings.PUBLIC_BASE_URL.rstrip("/") + path + (f"?{query}" if query else "")
    headers = {}
    if signature is None and token is not None:
        signature = sign(token, url, params)
    if signature is not None:
        headers["HTTP_X_TWILIO_SIGNATURE"] = signature
    target = path + (f"?{query}" if query else "")
    return client.post(target, urlencode(params), content_type="application/x-www-form-urlencoded", **headers)


def new_sid(prefix: str = "SM") -> str:
    return prefix + secrets.token_hex(16)


def inbound_params(account_sid: str, from_: str, to: str, body: str = "", **extra) -> dict:
    params = {
        "MessageSid": new_sid(),
        "SmsSid": "",
        "AccountSid": account_sid,
        "From": from_,
        "To": to,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "ApiVersion": "2010-04-01",
    }
    params["SmsSid"] = params["MessageSid"]
    params.update(extra)
    return params


def post_inbound(client, token, params, **kwargs):
    return post_webhook(client, INCOMING_SMS_PATH, params, token, **kwargs)


def post_status(client, token, account_sid, sid, status, *, message_id=None, error_code=None, **kwargs):
    params = {"MessageSid": sid, "MessageStatus": status, "SmsSid": sid, "SmsStatus": status}
    params["AccountSid"] = account_sid
    if error_code:
        params["ErrorCode"] = str(error_code)
    query = f"m={message_id}" if message_id is not None else ""
    return post_webhook(client, STATUS_CALLBACK_PATH, params, token, query=query, **kwargs)


class Line:
    """An organization's Twilio account with a known token and one of its numbers."""

    def __init__(self, org, token: str | None = None, phone_number: str | None = None):
        self.token = token or secrets.token_hex(16)
        self.account = TwilioAccountFactory(organization=org, auth_token=self.token)
        kwargs = {"phone_number": phone_number} if phone_number else {}
        self.number = PhoneNumberFactory(account=self.account, **kwargs)
        self.org = org

    @property
    def sid(self) -> str:
        return self.account.account_sid

    def inbound(self, from_: str, body: str = "", **extra) -> dict:
        return inbound_params(self.sid, from_, self.number.phone_number, body, **extra)


@pytest.fixture(autouse=True)
def _fresh_token_cache():
    forget_cached_tokens()
    yield
    forget_cached_tokens()


@pytest.fixture
def eager_tasks(monkeypatch):
    """Run Celery tasks in-process in both modes (production mode would queue them for a worker)."""
    from quicksend.celery import app

    monkeypatch.setattr(app.conf, "task_always_eager", True)
    monkeypatch.setattr(app.conf, "task_eager_propagates", True)


@pytest.fixture
def sent_replies(monkeypatch) -> list[dict]:
    """Every automatic reply the receive pipeline hands to the send service, recorded instead of sent."""
    from messaging.services import sending

    calls: list[dict] = []
    monkeypatch.setattr(
        sending, "do_send_message", lambda org, **kwargs: calls.append({"org": org, **kwargs})
    )
    return calls
