"""The one Twilio client factory.

Every REST call to Twilio (or to the sandbox) uses a client built here, so timeouts and the base URL come from
settings in one place: ``TWILIO_API_BASE_URL`` (None → the real api.twilio.com; the embedded mode points it at
the sandbox mounted in the same server) and ``TWILIO_HTTP_TIMEOUT`` (seconds, connect and read).
"""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.views.decorators.debug import sensitive_variables
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from messaging.twilio.errors import KIND_SECRET_UNREADABLE, TwilioError
from quicksend import crypto

_local = threading.local()


class EnvironmentOnceSession(requests.Session):
    """A requests session that reads the environment's proxy and CA-bundle settings once per origin.

    requests looks them up on every request (``os.environ``, the ``no_proxy`` rules, ``REQUESTS_CA_BUNDLE``):
    a tenth of a worker's CPU per text handed to Twilio. A process's environment does not change, so the
    answer for an origin (scheme and host) is kept. Calls that pass their own settings are not cached."""

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[str, str], dict] = {}

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        if proxies or stream is not None or verify is not None or cert is not None:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        origin = tuple(urlsplit(url)[:2])
        found = self._environment.get(origin)
        if found is None:
            found = self._environment[origin] = super().merge_environment_settings(url, {}, None, None, None)
        return {name: dict(value) if isinstance(value, dict) else value for name, value in found.items()}


def _http_client() -> TwilioHttpClient:
    # One pooled HTTP session per thread (requests sessions are not thread-safe), re-created when the
    # timeout setting changes.
    timeout = float(settings.TWILIO_HTTP_TIMEOUT)
    http = getattr(_local, "http", None)
    if http is None or http.timeout != timeout:
        http = TwilioHttpClient(timeout=timeout)
        session = EnvironmentOnceSession()
        session.adapters = http.session.adapters  # Twilio's connection pools, as it mounted them
        http.session = session
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


_MAX_CLIENTS_PER_THREAD = 64


@sensitive_variables()
def client_for_account(account) -> Client:
    """A client for a stored ``messaging.TwilioAccount`` (its token is decrypted here, never elsewhere).

    The send task asks for one per message, so each thread keeps the clients it built, keyed by the account
    and the *encrypted* token as stored plus the base URL and timeout: a changed token (a new ciphertext),
    another account or another setting gets a new client at once, and a token is decrypted once per thread
    rather than once per message. The clients share the thread's pooled HTTP session.

    Raises TwilioError (kind ``secret_unreadable``, permanent) when the stored token cannot be decrypted, so
    callers handle a single exception type.
    """
    key = (
        account.pk,
        account.account_sid,
        account.auth_token_encrypted,
        settings.TWILIO_API_BASE_URL,
        float(settings.TWILIO_HTTP_TIMEOUT),
    )
    clients = getattr(_local, "clients", None)
    if clients is None:
        clients = _local.clients = {}
    client = clients.get(key)
    if client is not None and client.http_client is _http_client():
        return client
    try:
        auth_token = account.get_auth_token()
    except crypto.SecretUnreadable as exc:
        raise TwilioError(str(exc), kind=KIND_SECRET_UNREADABLE, retryable=False) from None
    client = client_for_credentials(account.account_sid, auth_token)
    if len(clients) >= _MAX_CLIENTS_PER_THREAD:
        clients.clear()
    clients[key] = client
    return client


def account_api(client: Client, account_sid: str):
    """The 2010-04-01 API of one account (``…/Accounts/{Sid}/…``)."""
    return client.api.v2010.accounts(account_sid)
