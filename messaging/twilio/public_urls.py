"""The URLs Twilio calls: built from ``PUBLIC_BASE_URL`` (the address Twilio reaches us at), never from a
request's Host header (signatures are checked against the URL Twilio called)."""

from __future__ import annotations

from django.conf import settings

INCOMING_SMS_PATH = "/api/incoming-sms"
STATUS_CALLBACK_PATH = "/api/status-callback"


def incoming_sms_url() -> str:
    """The "A message comes in" Request URL of every number."""
    return settings.PUBLIC_BASE_URL.rstrip("/") + INCOMING_SMS_PATH


def status_callback_url() -> str:
    """The delivery status callback URL (QuickSend also sends it with each message it creates)."""
    return settings.PUBLIC_BASE_URL.rstrip("/") + STATUS_CALLBACK_PATH
