"""The one Twilio client factory (GUIDE §3.10).

Every REST call to Twilio (or to the sandbox) uses a client built here, so timeouts and the base URL come from
settings in one place: ``TWILIO_API_BASE_URL`` (None → the real api.twilio.com; the embedded mode points it at
the sandbox mounted in the same server) and ``TWILIO_HTTP_TIMEOUT`` (seconds, connect and read).
"""

from __future__ import annotations

import threading

from django.conf import settings
from django.views.decorators.debug import sensitive_variables
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from messaging.twilio_errors import KIND_SECRET_UNREADABLE, TwilioError
from quicksend import crypto

_local = threading.local()


def _http_client() -> TwilioHttpClient:
    # One pooled HTTP session per thread (requests sessions are not thread-safe), re-created when the
    # timeout setting changes.
    timeout = float(settings.TWILIO_HTTP_TIMEOUT)
    http = getattr(_local, "http", None)
    if http is None or http.timeout != timeout:
        http = TwilioHttpClient(timeout=timeout)
        _local.http = http
    return http


@sensitive_variables()
def client_for_credentials(account_sid: str, auth_token: str) -> Client:
    """A client for these credentials, talking to the configured base URL with the configured timeout."""
    client = Client(account_sid, auth_token, http_client=_http_client())
    base_url = settings.TWILIO_API_BASE_URL
    if base_url:
        client.api.base_url = base_url.rstrip("/")
    return client


@sensitive_variables()
def client_for_account(account) -> Client:
    """A client for a stored ``messaging.TwilioAccount`` (its token is decrypted here, never elsewhere).

    Raises TwilioError (kind ``secret_unreadable``, permanent) when the stored token cannot be decrypted, so
    callers handle a single exception type.
    """
    try:
        auth_token = account.get_auth_token()
    except crypto.SecretUnreadable as exc:
        raise TwilioError(str(exc), kind=KIND_SECRET_UNREADABLE, retryable=False) from None
    return client_for_credentials(account.account_sid, auth_token)


def account_api(client: Client, account_sid: str):
    """The 2010-04-01 API of one account (``…/Accounts/{Sid}/…``)."""
    return client.api.v2010.accounts(account_sid)
