"""Verifying Twilio webhooks: which account sent it (from ``AccountSid``) and whether its signature holds.

GUIDE §4: the signature is checked with the token of the account named by ``AccountSid`` (so Messaging
Service pools, whose numbers may be anywhere in the account, work), against the URL Twilio called, rebuilt
from ``PUBLIC_BASE_URL`` + path + query (never the Host header, which a proxy or an attacker controls).

The account lookup is one indexed query (``TwilioAccount.account_sid`` is unique); the decrypted token is
cached in the process for ``TOKEN_CACHE_SECONDS`` so a burst of webhooks does not decrypt it each time. A
signature that fails with a cached token is re-checked once against the database, so a token changed a
moment ago is honoured at once.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from django.views.decorators.debug import sensitive_variables
from twilio.request_validator import RequestValidator

from messaging.models import TwilioAccount
from quicksend import crypto

ACCOUNT_SID_RE = re.compile(r"^AC[0-9a-fA-F]{32}$")
TOKEN_CACHE_SECONDS = 30.0


@dataclass(frozen=True)
class VerifiedAccount:
    """The account (and organization) a verified webhook came from."""

    account_id: int
    organization_id: int
    account_sid: str


@dataclass(frozen=True)
class _Entry:
    account: VerifiedAccount
    validator: RequestValidator
    expires: float


_cache: dict[str, _Entry] = {}
_lock = threading.Lock()


def forget_cached_tokens() -> None:
    """Drop every cached token (tests, and after an account is deleted or its token changed)."""
    with _lock:
        _cache.clear()


def public_url(request: HttpRequest) -> str:
    """The URL Twilio called: PUBLIC_BASE_URL + path + the query string exactly as sent."""
    url = settings.PUBLIC_BASE_URL.rstrip("/") + request.path
    query = request.META.get("QUERY_STRING", "")
    return f"{url}?{query}" if query else url


@sensitive_variables()
def _load(account_sid: str) -> _Entry | None:
    row = (
        TwilioAccount.objects.filter(account_sid=account_sid)
        .values("id", "organization_id", "account_sid", "auth_token_encrypted")
        .first()
    )
    if row is None:
        return None
    try:
        token = crypto.decrypt(row["auth_token_encrypted"])
    except crypto.SecretUnreadable:
        return None
    entry = _Entry(
        VerifiedAccount(row["id"], row["organization_id"], row["account_sid"]),
        RequestValidator(token),
        time.monotonic() + TOKEN_CACHE_SECONDS,
    )
    with _lock:
        _cache[account_sid] = entry
    return entry


def verify_request(request: HttpRequest) -> VerifiedAccount | None:
    """The account a Twilio webhook comes from, or None when it cannot be verified (unknown or malformed
    AccountSid, missing or wrong signature, a signature made with another account's token)."""
    signature = request.headers.get("X-Twilio-Signature", "")
    account_sid = request.POST.get("AccountSid", "")
    if not signature or not ACCOUNT_SID_RE.match(account_sid):
        return None
    url = public_url(request)
    entry = _cache.get(account_sid)
    fresh = False
    if entry is None or entry.expires < time.monotonic():
        entry, fresh = _load(account_sid), True
        if entry is None:
            return None
    if entry.validator.validate(url, request.POST, signature):
        return entry.account
    if not fresh:
        entry = _load(account_sid)
        if entry is not None and entry.validator.validate(url, request.POST, signature):
            return entry.account
    return None
