"""The sandbox's HTTP primitives (``Request``, ``Response``) and Twilio's JSON shapes of its resources, shared
by the REST API (``sandbox.app``), the control API (``sandbox.control``) and the phone page
(``sandbox.phone``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from sandbox.state import API_VERSION, ERROR_MESSAGES, Account, Media, Message, Number, TwilioError, rfc2822

PREFIX = "/sandbox"


@dataclass
class Request:
    method: str
    path: str  # without PREFIX
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    api_base: str  # scheme://host/sandbox, as the client reached us
    params: dict[str, str] = field(default_factory=dict)  # from the route
    account: Account | None = None  # the authenticated account (REST)

    def form(self) -> list[tuple[str, str]]:
        return parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True)

    def json(self) -> dict:
        if not self.body:
            return {}
        data = json.loads(self.body)
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        return data

    def arg(self, name: str, default: str = "") -> str:
        for key, value in self.query:
            if key == name:
                return value
        return default


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def json_response(data: object, status: int = 200) -> Response:
    return Response(status, json.dumps(data, separators=(",", ":")).encode())


def error_response(error: TwilioError) -> Response:
    response = json_response(error.body(), error.status)
    if error.status == 401:
        response.headers.append((b"www-authenticate", b'Basic realm="Twilio API"'))
    return response


# --- Twilio-shaped JSON --------------------------------------------------------------------------
def account_uri(sid: str) -> str:
    return f"/{API_VERSION}/Accounts/{sid}"


def render_account(account: Account) -> dict:
    base = account_uri(account.sid)
    return {
        "auth_token": account.auth_token,
        "date_created": rfc2822(account.date_created),
        "date_updated": rfc2822(account.date_updated),
        "friendly_name": account.friendly_name,
        "owner_account_sid": account.sid,
        "sid": account.sid,
        "status": account.status,
        "subresource_uris": {
            "incoming_phone_numbers": f"{base}/IncomingPhoneNumbers.json",
            "messages": f"{base}/Messages.json",
        },
        "type": account.type,
        "uri": f"{base}.json",
    }


def render_number(number: Number) -> dict:
    return {
        "account_sid": number.account_sid,
        "address_sid": None,
        "address_requirements": "none",
        "api_version": API_VERSION,
        "beta": False,
        "capabilities": dict(number.capabilities),
        "date_created": rfc2822(number.date_created),
        "date_updated": rfc2822(number.date_updated),
        "friendly_name": number.friendly_name,
        "identity_sid": None,
        "phone_number": number.phone_number,
        "origin": "twilio",
        "sid": number.sid,
        "sms_application_sid": None,
        "sms_fallback_method": number.sms_fallback_method,
        "sms_fallback_url": number.sms_fallback_url,
        "sms_method": number.sms_method,
        "sms_url": number.sms_url,
        "status_callback": number.status_callback,
        "status_callback_method": "POST",
        "trunk_sid": None,
        "uri": f"{account_uri(number.account_sid)}/IncomingPhoneNumbers/{number.sid}.json",
        "voice_receive_mode": "voice",
        "voice_application_sid": None,
        "voice_caller_id_lookup": False,
        "voice_fallback_method": "POST",
        "voice_fallback_url": None,
        "voice_method": "POST",
        "voice_url": None,
        "emergency_status": "Inactive",
        "emergency_address_sid": None,
        "emergency_address_status": "unregistered",
        "bundle_sid": None,
        "status": "in-use",
        "type": number.type,
    }


def render_message(message: Message) -> dict:
    uri = f"{account_uri(message.account_sid)}/Messages/{message.sid}"
    return {
        "account_sid": message.account_sid,
        "api_version": API_VERSION,
        "body": message.body,
        "date_created": rfc2822(message.date_created),
        "date_sent": rfc2822(message.date_sent),
        "date_updated": rfc2822(message.date_updated),
        "direction": message.direction,
        "error_code": message.error_code,
        "error_message": ERROR_MESSAGES.get(message.error_code) if message.error_code else None,
        "from": message.from_,
        "messaging_service_sid": None,
        "num_media": str(len(message.media)),
        "num_segments": str(message.num_segments),
        "price": None,
        "price_unit": "USD",
        "sid": message.sid,
        "status": message.status,
        "subresource_uris": {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"},
        "to": message.to,
        "uri": f"{uri}.json",
    }


def render_media(media: Media) -> dict:
    return {
        "account_sid": media.account_sid,
        "content_type": media.content_type,
        "date_created": rfc2822(media.date_created),
        "date_updated": rfc2822(media.date_created),
        "parent_sid": media.parent_sid,
        "sid": media.sid,
        "uri": f"{account_uri(media.account_sid)}/Messages/{media.parent_sid}/Media/{media.sid}.json",
    }


def render_control_message(message: Message, api_base: str) -> dict:
    """The Twilio JSON plus what only the sandbox knows (hand-off time, history, callbacks, webhook)."""
    data = render_message(message)
    data.update(
        {
            "handoff_at": message.handoff_at,
            "history": [[status, at] for status, at in message.history],
            "callbacks": list(message.callbacks),
            "webhook": message.webhook,
            "media": [
                {
                    "sid": media.sid,
                    "content_type": media.content_type,
                    "url": media.url or f"{api_base}/control/media/{media.sid}",
                }
                for media in message.media
            ],
            "seq": message.seq,
        }
    )
    return data
