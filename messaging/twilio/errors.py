"""Twilio failures as domain errors: a plain-words message per code and a retryable/permanent flag.

Every call to Twilio goes through ``messaging.twilio.client``; callers wrap it with ``twilio_call()`` (or call
``classify(exc)``) and handle one exception type, ``TwilioError``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import requests
from django.conf import settings
from twilio.base.exceptions import TwilioException, TwilioRestException

from quicksend.errors import DomainError


@dataclass(frozen=True)
class CodeInfo:
    message: str
    retryable: bool


# The FACTS.md error table, in words an agent or an admin understands.
CODES: dict[int, CodeInfo] = {
    20003: CodeInfo("Authentication failed. Please check your Twilio SID and Auth Token.", False),
    20404: CodeInfo("Twilio does not know this resource (wrong Account SID or number SID).", False),
    20429: CodeInfo("Twilio is receiving too many requests right now; the request will be retried.", True),
    21211: CodeInfo("The recipient's phone number is not valid.", False),
    21212: CodeInfo("The sender number is not valid.", False),
    21408: CodeInfo("Sending to this country or region is not enabled on the Twilio account.", False),
    21606: CodeInfo("The sender number does not belong to this Twilio account or cannot send SMS.", False),
    21610: CodeInfo(
        "The recipient has opted out (replied STOP) and cannot be texted until they reply START.", False
    ),
    21611: CodeInfo("The sender number's queue at Twilio is full; the message will be retried later.", True),
    21612: CodeInfo("Twilio cannot route a message from this sender to this recipient.", False),
    21614: CodeInfo("The recipient's number is not a mobile number and cannot receive SMS.", False),
    21617: CodeInfo("The message is longer than 1,600 characters.", False),
    30001: CodeInfo("The message was dropped because the sender's queue overflowed.", True),
    30003: CodeInfo("The recipient's phone is unreachable (switched off or out of coverage).", False),
    30004: CodeInfo("The message was blocked (the recipient blocks texts or the carrier refused it).", False),
    30005: CodeInfo("The recipient's number is unknown or no longer in service.", False),
    30006: CodeInfo("The recipient's number is a landline or its carrier cannot receive SMS.", False),
    30007: CodeInfo(
        "The carrier filtered the message (it looked like spam or violated carrier rules).", False
    ),
    30008: CodeInfo("Delivery failed for an unknown reason.", False),
    30036: CodeInfo("The message expired before it could be sent (validity period).", False),
}

KIND_AUTH = "auth"
KIND_NETWORK = "unreachable"
KIND_TIMEOUT = "timeout"
KIND_RATE_LIMIT = "rate_limited"
KIND_SERVER = "server_error"
KIND_REJECTED = "rejected"
KIND_UNKNOWN = "unknown"
KIND_SECRET_UNREADABLE = "secret_unreadable"  # noqa: S105 (a kind, not a secret)


class TwilioError(DomainError):
    """A failed Twilio call, in plain words.

    ``code`` is Twilio's error code when there is one; ``status`` the HTTP status Twilio answered; ``kind``
    one of the KIND_* values; ``retryable`` says whether trying again later can succeed (rate limits, server
    errors, network). As an API answer: 503 when trying again may work, else 400, with code, kind and
    retryable beside the message.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        status: int | None = None,
        kind: str = KIND_UNKNOWN,
        retryable: bool = False,
        twilio_message: str = "",
    ):
        super().__init__(message, http_status=503 if retryable else 400)
        self.code = code
        self.status = status
        self.kind = kind
        self.retryable = retryable
        self.twilio_message = twilio_message

    def details(self) -> dict:
        return {"code": self.code, "kind": self.kind, "retryable": self.retryable}

    @property
    def permanent(self) -> bool:
        return not self.retryable

    def __repr__(self) -> str:
        return f"TwilioError(code={self.code}, kind={self.kind}, retryable={self.retryable})"


def describe_code(code: int | None) -> str:
    """The plain-words message for a Twilio error code (synchronous or from a status callback)."""
    if code is not None and int(code) in CODES:
        return CODES[int(code)].message
    return f"Twilio reported error {code}." if code else "Twilio reported an error."


def is_retryable_code(code: int | None) -> bool:
    return code is not None and int(code) in CODES and CODES[int(code)].retryable


def _timeout_seconds() -> str:
    return f"{settings.TWILIO_HTTP_TIMEOUT:g}"


def _as_rest_exception(exc: BaseException) -> BaseException:
    """The twilio library reports a failed page of a list (``stream``/``list``) as a bare
    ``TwilioException("Unable to fetch page", response)``: read Twilio's answer from the response, so a
    refused token on a list is an authentication failure like anywhere else, not an unreadable answer."""
    if isinstance(exc, TwilioRestException) or not isinstance(exc, TwilioException) or len(exc.args) < 2:
        return exc
    response = exc.args[1]
    status = getattr(response, "status_code", None)
    if not isinstance(status, int) or status < 400:
        return exc
    try:
        payload = json.loads(response.text)
    except (TypeError, ValueError):
        return exc
    if not isinstance(payload, dict):
        return exc
    return TwilioRestException(status, "", msg=str(payload.get("message") or ""), code=payload.get("code"))


def classify(exc: BaseException) -> TwilioError:
    """Convert an exception raised by the twilio library (or its HTTP layer) into a TwilioError."""
    if isinstance(exc, TwilioError):
        return exc
    exc = _as_rest_exception(exc)
    if isinstance(exc, TwilioRestException):
        code = int(exc.code) if exc.code else None
        status = int(exc.status) if exc.status else None
        twilio_message = str(exc.msg or "")
        if code in CODES:
            info = CODES[code]
            kind = KIND_AUTH if code == 20003 else KIND_RATE_LIMIT if code == 20429 else KIND_REJECTED
            return TwilioError(
                info.message,
                code=code,
                status=status,
                kind=kind,
                retryable=info.retryable,
                twilio_message=twilio_message,
            )
        if status == 401:
            return TwilioError(CODES[20003].message, code=code or 20003, status=status, kind=KIND_AUTH)
        if status == 429:
            return TwilioError(
                CODES[20429].message, code=code, status=status, kind=KIND_RATE_LIMIT, retryable=True
            )
        if status is not None and status >= 500:
            return TwilioError(
                f"Twilio had a server error (HTTP {status}); try again in a moment.",
                code=code,
                status=status,
                kind=KIND_SERVER,
                retryable=True,
                twilio_message=twilio_message,
            )
        detail = f" ({twilio_message})" if twilio_message else ""
        return TwilioError(
            f"Twilio refused the request: error {code or status}{detail}.",
            code=code,
            status=status,
            kind=KIND_REJECTED,
            retryable=False,
            twilio_message=twilio_message,
        )
    # requests' ConnectTimeout is both a Timeout and a ConnectionError: test Timeout first.
    if isinstance(exc, requests.Timeout):
        return TwilioError(
            f"Twilio did not answer within {_timeout_seconds()} seconds (timed out); try again in a moment.",
            kind=KIND_TIMEOUT,
            retryable=True,
        )
    if isinstance(exc, requests.ConnectionError):
        return TwilioError(
            "Twilio could not be reached (the connection failed); check the server's internet access and "
            "try again.",
            kind=KIND_NETWORK,
            retryable=True,
        )
    if isinstance(exc, requests.RequestException | TwilioException | json.JSONDecodeError):
        # Unparseable answers (an HTML error page from a proxy, …) land here.
        return TwilioError(
            "Twilio sent an answer QuickSend could not understand; try again in a moment.",
            kind=KIND_UNKNOWN,
            retryable=True,
        )
    raise TypeError(f"not a Twilio failure: {type(exc).__name__}")


TRANSLATED = (TwilioException, requests.RequestException, json.JSONDecodeError)


@contextmanager
def twilio_call() -> Iterator[None]:
    """``with twilio_call(): client....`` turns any Twilio/HTTP failure into a TwilioError."""
    try:
        yield
    except TwilioError:
        raise
    except TRANSLATED as exc:
        raise classify(exc) from exc
