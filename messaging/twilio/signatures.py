"""Verifying Twilio webhooks: which account sent it (from ``AccountSid``) and whether its signature holds.

The signature is checked with the token of the account named by ``AccountSid`` (so Messaging
Service pools, whose numbers may be anywhere in the account, work), against the URL Twilio called, rebuilt
from ``PUBLIC_BASE_URL`` + path + query (never the Host header, which a proxy or an attacker controls).

The account lookup is one indexed query (``TwilioAccount.account_sid`` is unique); the decrypted token is
cached in the process for ``TOKEN_CACHE_SECONDS`` so a burst of webhooks does not decrypt it each time. A
signature that fails with a cached token is re-checked once against the database, so a token changed a
moment ago is honoured at once.
"""

from __future__ import annotations

import base64
import hmac
import re
import threading
import time
from dataclasses import dataclass, field
from hashlib import sha1
from urllib.parse import parse_qsl, urlsplit

from django.conf import settings
from django.views.decorators.debug import sensitive_variables

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
    key: bytes = field(repr=False)
    expires: float


_cache: dict[str, _Entry] = {}
_lock = threading.Lock()


def forget_cached_tokens() -> None:
    """Drop every cached token (tests, and after an account is deleted or its token changed)."""
    with _lock:
        _cache.clear()


def public_url_for(path: str, query_string: str) -> str:
    url = settings.PUBLIC_BASE_URL.rstrip("/") + path
    return f"{url}?{query_string}" if query_string else url


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
        token.encode("utf-8"),
        time.monotonic() + TOKEN_CACHE_SECONDS,
    )
    with _lock:
        _cache[account_sid] = entry
    return entry


class Form(dict):
    """A posted form as ``{name: [values]}`` with the ``QueryDict`` methods the webhooks use (``get`` gives
    the last value, like Django). Parsing with ``parse_qsl`` is three times cheaper than a QueryDict."""

    @classmethod
    def parse(cls, text: str, max_fields: int = 1000) -> Form:
        """Raises ValueError past ``max_fields`` fields."""
        form = cls()
        for name, value in parse_qsl(text, keep_blank_values=True, max_num_fields=max_fields):
            form.setdefault(name, []).append(value)
        return form

    def get(self, name: str, default=None):
        values = super().get(name)
        return values[-1] if values else default

    def getlist(self, name: str) -> list[str]:
        return list(super().get(name, ()))

    def dict(self) -> dict[str, str]:
        return {name: values[-1] for name, values in self.items()}


def compute_signature(key: bytes, url: str, params) -> str:
    """Twilio's ``X-Twilio-Signature`` (HMAC-SHA1 of the URL followed by each parameter name and value, names
    sorted, each name's distinct values sorted), exactly as ``twilio.request_validator`` computes it; a test
    holds the two equal. ``params`` has ``getlist`` (a ``QueryDict`` or a ``Form``)."""
    parts = [url]
    for name in sorted(params.keys()):
        for value in sorted(set(params.getlist(name))):
            parts.append(name)
            parts.append(value)
    digest = hmac.new(key, "".join(parts).encode("utf-8"), sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _url_variants(url: str) -> list[str]:
    """The URL as called, then with the default port added or removed: Twilio signs either form (its own
    validator accepts both)."""
    parts = urlsplit(url)
    if parts.port:
        other = parts._replace(netloc=parts.netloc.rsplit(":", 1)[0]).geturl()
    else:
        port = 443 if parts.scheme == "https" else 80
        other = parts._replace(netloc=f"{parts.netloc}:{port}").geturl()
    return [url, other] if other != url else [url]


def signature_matches(key: bytes, url: str, params, signature: str) -> bool:
    expected = signature.encode("utf-8", "replace")
    return any(
        hmac.compare_digest(compute_signature(key, candidate, params).encode("ascii"), expected)
        for candidate in _url_variants(url)
    )


def verify(url: str, params, signature: str) -> VerifiedAccount | None:
    """The account a Twilio webhook comes from, or None when it cannot be verified (unknown or malformed
    AccountSid, missing or wrong signature, a signature made with another account's token). ``url`` is the
    URL Twilio called (``public_url_for``); ``params`` the posted form (a ``QueryDict`` or a ``Form``:
    repeated fields count)."""
    account_sid = params.get("AccountSid", "")
    if not signature or not ACCOUNT_SID_RE.match(account_sid):
        return None
    entry = _cache.get(account_sid)
    fresh = False
    if entry is None or entry.expires < time.monotonic():
        entry, fresh = _load(account_sid), True
        if entry is None:
            return None
    if signature_matches(entry.key, url, params, signature):
        return entry.account
    if not fresh:
        entry = _load(account_sid)
        if entry is not None and signature_matches(entry.key, url, params, signature):
            return entry.account
    return None
