"""The CRMs' own proofs that a request comes from them: Salesforce Canvas signed requests and HubSpot's v3
request signatures. Each answers the verified content or raises ``EmbedRefused``."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time

from tenancy.embed import EmbedRefused

HUBSPOT_MAX_AGE_MS = 5 * 60 * 1000
# HubSpot signs the URI with these escapes decoded (its v3 signature documentation).
_HUBSPOT_DECODE = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}


def verify_canvas_signed_request(signed_request: str, consumer_secret: str) -> dict:
    """A Canvas ``signed_request``: ``base64(HMAC-SHA256(consumer secret, envelope)) "." envelope``, the
    envelope being base64 JSON. Answers the envelope when the signature is the secret's."""
    refused = EmbedRefused(
        "Salesforce's signed request could not be verified. Check the consumer secret in Settings → "
        "Integrations.",
        code="bad_signature",
    )
    if not consumer_secret or not signed_request or "." not in signed_request or len(signed_request) > 65536:
        raise refused
    encoded_signature, encoded_envelope = signed_request.split(".", 1)
    try:
        signature = base64.b64decode(encoded_signature, validate=True)
    except (binascii.Error, ValueError):
        raise refused
    expected = hmac.new(consumer_secret.encode(), encoded_envelope.encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise refused
    try:
        envelope = json.loads(base64.b64decode(encoded_envelope))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise refused
    if not isinstance(envelope, dict) or envelope.get("algorithm", "HMACSHA256") != "HMACSHA256":
        raise refused
    return envelope


def hubspot_uri(uri: str) -> str:
    for escaped, char in _HUBSPOT_DECODE.items():
        uri = uri.replace(escaped, char).replace(escaped.lower(), char)
    return uri


def hubspot_v3_signature(client_secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    source = method.upper().encode() + hubspot_uri(uri).encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(client_secret.encode(), source, hashlib.sha256).digest()).decode()


def verify_hubspot_v3(
    client_secret: str,
    *,
    method: str,
    uri: str,
    body: bytes,
    signature: str,
    timestamp: str,
    now_ms: int | None = None,
) -> None:
    """HubSpot's ``X-HubSpot-Signature-v3``: base64 HMAC-SHA256 of method + URI + body + timestamp with the
    app's client secret, refused when the timestamp is more than five minutes old."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if not (timestamp or "").isdigit() or abs(now_ms - int(timestamp)) > HUBSPOT_MAX_AGE_MS:
        raise EmbedRefused("HubSpot's request is too old. Open the card again.", code="stale")
    if not client_secret or not signature:
        raise EmbedRefused("HubSpot's request signature could not be verified.", code="bad_signature")
    expected = hubspot_v3_signature(client_secret, method, uri, body, timestamp)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise EmbedRefused("HubSpot's request signature could not be verified.", code="bad_signature")
