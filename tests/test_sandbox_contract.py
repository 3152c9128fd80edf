"""Contract: every response the sandbox gives the official twilio library conforms to Twilio's OpenAPI schema
(the subset in tests/contract/, copied from twilio/twilio-oai), and every webhook it sends is signed so that
``twilio.request_validator`` accepts it.

The spec's schemas list properties without ``required``; the suite checks them strictly (every documented
property present, nothing undocumented) so a missing or misspelled field fails.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from jsonschema import FormatChecker
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from tests.plugins.servers import wait_until

SPEC = json.loads((Path(__file__).parent / "contract" / "twilio_api_v2010_subset.json").read_text())
CUSTOMER = "+14155550188"

# Twilio's error body (FACTS.md: "errors as JSON {code, message, more_info, status}").
ERROR_SCHEMA = {
    "type": "object",
    "required": ["code", "message", "more_info", "status"],
    "properties": {
        "code": {"type": "integer"},
        "message": {"type": "string"},
        "more_info": {"type": "string", "pattern": r"^https://www\.twilio\.com/docs/errors/\d+$"},
        "status": {"type": "integer"},
    },
}

FORMATS = FormatChecker()


@FORMATS.checks("date-time-rfc-2822")
def _rfc2822(value) -> bool:
    return not isinstance(value, str) or bool(
        re.fullmatch(
            r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000", value
        )
    )


@FORMATS.checks("phone-number")
def _phone(value) -> bool:
    return not isinstance(value, str) or bool(re.fullmatch(r"\+[1-9]\d{6,14}|\d{3,8}", value))


@FORMATS.checks("http-method")
def _method(value) -> bool:
    return not isinstance(value, str) or value in ("GET", "POST")


def strict(schema):
    """Every documented property required and nothing else allowed, through the whole tree."""
    schema = copy.deepcopy(schema)
    if isinstance(schema, dict):
        if isinstance(schema.get("properties"), dict):
            schema["required"] = sorted(schema["properties"])
            schema["additionalProperties"] = False
        return {k: strict(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


STRICT_COMPONENTS = strict(SPEC["components"])
REGISTRY = Registry().with_resource(
    "urn:twilio-subset",
    Resource.from_contents({"components": STRICT_COMPONENTS}, default_specification=DRAFT4),
)


def validator(schema) -> OAS30Validator:
    text = json.dumps(strict(schema)).replace('"#/components/', '"urn:twilio-subset#/components/')
    return OAS30Validator(json.loads(text), registry=REGISTRY, format_checker=FORMATS)


OPERATIONS = [
    (re.compile("^" + re.sub(r"\\\{[A-Za-z]+\\\}", "[^/]+", re.escape(path)) + "$"), path)
    for path in SPEC["paths"]
]


def response_schema(method: str, path: str, status: int):
    for pattern, template in OPERATIONS:
        if pattern.match(path):
            operation = SPEC["paths"][template].get(method.lower())
            assert operation, f"{method} {template} is not in the contract subset"
            response = operation["responses"].get(str(status))
            assert response is not None, f"{method} {template} never answers {status} at Twilio"
            content = response.get("content", {}).get("application/json")
            return content["schema"] if content else None
    raise AssertionError(f"{path} is not a Twilio path of the contract")


class RecordingHttpClient(TwilioHttpClient):
    """The library's own HTTP client, keeping every exchange for validation."""

    def __init__(self):
        super().__init__(timeout=10)
        self.exchanges: list[tuple[str, str, int, str]] = []

    def request(self, method, url, *args, **kwargs):
        response = super().request(method, url, *args, **kwargs)
        self.exchanges.append((method, url, response.status_code, response.text))
        return response


class Contract:
    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.sid, self.token = sandbox.new_account()
        self.recorder = RecordingHttpClient()
        self.client = Client(self.sid, self.token, http_client=self.recorder)
        self.client.api.base_url = sandbox.base_url
        self.checked = 0

    def check_all(self) -> None:
        base_path = urlsplit(self.sandbox.base_url).path
        for method, url, status, text in self.recorder.exchanges[self.checked :]:
            path = urlsplit(url).path
            assert path.startswith(base_path + "/2010-04-01/"), url
            path = path[len(base_path) :]
            if status >= 400:
                schema = ERROR_SCHEMA
                assert json.loads(text)["status"] == status
            else:
                schema = response_schema(method, path, status)
            if schema is None:
                assert text == "", f"{method} {path} → {status} should have no body"
                continue
            errors = sorted(validator(schema).iter_errors(json.loads(text)), key=str)
            assert not errors, f"{method} {path} → {status}: " + "; ".join(
                f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5]
            )
        self.checked = len(self.recorder.exchanges)


@pytest.fixture
def contract(twilio_sandbox):
    contract = Contract(twilio_sandbox)
    yield contract
    contract.check_all()
    assert contract.recorder.exchanges, "a contract test must exercise the API"


def test_account_fetch_conforms(contract):
    account = contract.client.api.v2010.accounts(contract.sid).fetch()
    assert (account.sid, account.status, account.type) == (contract.sid, "active", "Full")


def test_number_list_fetch_and_update_conform(contract, twilio_sandbox):
    for kind in ("local", "tollfree", "shortcode"):
        twilio_sandbox.add_number(
            contract.sid, type=kind, friendly_name=f"{kind} line", mms=kind != "shortcode"
        )
    numbers = list(contract.client.incoming_phone_numbers.stream(page_size=2))
    assert len(numbers) == 3
    first = numbers[0]
    assert contract.client.incoming_phone_numbers(first.sid).fetch().phone_number == first.phone_number
    updated = contract.client.incoming_phone_numbers(first.sid).update(
        sms_url="https://crm.example.test/api/incoming-sms", sms_method="POST", friendly_name="Front desk"
    )
    assert (updated.sms_url, updated.friendly_name) == (
        "https://crm.example.test/api/incoming-sms",
        "Front desk",
    )


def test_message_create_fetch_list_conform(contract, twilio_sandbox):
    number = twilio_sandbox.add_number(contract.sid)["phone_number"]
    sms = contract.client.messages.create(to=CUSTOMER, from_=number, body="Hello ✓ unicode")
    mms = contract.client.messages.create(
        to=CUSTOMER, from_=number, body="See photo", media_url=["https://example.test/house.jpg"]
    )
    assert sms.sid.startswith("SM") and mms.sid.startswith("MM")
    assert (sms.num_segments, mms.num_media) == ("1", "1")
    wait_until(lambda: contract.client.messages(sms.sid).fetch().status == "delivered")
    listed = list(contract.client.messages.stream(to=CUSTOMER, from_=number, page_size=1))
    assert [m.sid for m in listed] == [mms.sid, sms.sid]
    media = list(contract.client.messages(mms.sid).media.list())
    assert [m.content_type for m in media] == ["image/jpeg"]
    assert contract.client.messages(mms.sid).media(media[0].sid).fetch().parent_sid == mms.sid


def test_message_cancel_redact_delete_conform(contract, twilio_sandbox):
    number = twilio_sandbox.add_number(contract.sid)["phone_number"]
    twilio_sandbox.behaviour(contract.sid, rates={"local": 0.001})  # the second message waits in the queue
    first = contract.client.messages.create(to=CUSTOMER, from_=number, body="first")
    second = contract.client.messages.create(to=CUSTOMER, from_=number, body="second")
    assert contract.client.messages(second.sid).update(status="canceled").status == "canceled"
    wait_until(lambda: contract.client.messages(first.sid).fetch().status == "delivered")
    assert contract.client.messages(first.sid).update(body="").body == ""
    assert contract.client.messages(first.sid).delete() is True
    with pytest.raises(TwilioRestException) as excinfo:
        contract.client.messages(first.sid).fetch()
    assert excinfo.value.status == 404


def test_inbound_media_list_and_content_conform(contract, twilio_sandbox):
    number = twilio_sandbox.add_number(contract.sid)["phone_number"]
    inbound = twilio_sandbox.inbound(
        CUSTOMER, number, "two pictures", [("image/png", b"png"), ("image/gif", b"gif")]
    )
    media = list(contract.client.messages(inbound["sid"]).media.list())
    assert sorted(m.content_type for m in media) == ["image/gif", "image/png"]
    fetched = contract.client.messages(inbound["sid"]).fetch()
    assert (fetched.direction, fetched.status, fetched.num_media) == ("inbound", "received", "2")
    # The content URL (the media's uri without .json) serves the bytes to the account's credentials.
    content = contract.recorder.request(
        "GET",
        twilio_sandbox.base_url + media[0].uri.removesuffix(".json"),
        auth=(contract.sid, contract.token),
    )
    contract.recorder.exchanges.pop()  # raw bytes, not JSON: not part of the schema check
    assert content.status_code == 200 and content.text in ("png", "gif")


@pytest.mark.parametrize(
    ("to", "code"), [("+15005550001", 21211), ("+15005550004", 21610), ("+15005550009", 21614)]
)
def test_error_bodies_conform(contract, twilio_sandbox, to, code):
    number = twilio_sandbox.add_number(contract.sid)["phone_number"]
    with pytest.raises(TwilioRestException) as excinfo:
        contract.client.messages.create(to=to, from_=number, body="x")
    assert (excinfo.value.status, excinfo.value.code) == (400, code)


def test_authentication_error_conforms(contract):
    bad = Client(contract.sid, "f" * 32, http_client=contract.recorder)
    bad.api.base_url = contract.sandbox.base_url
    with pytest.raises(TwilioRestException) as excinfo:
        bad.api.v2010.accounts(contract.sid).fetch()
    assert (excinfo.value.status, excinfo.value.code) == (401, 20003)


def test_status_callbacks_validate_with_the_request_validator(contract, twilio_sandbox, webhook_receiver):
    number = twilio_sandbox.add_number(contract.sid)["phone_number"]
    url = webhook_receiver.url("/callbacks/status?org=acme&x=1")
    contract.client.messages.create(to="+15005553003", from_=number, body="x", status_callback=url)
    wait_until(lambda: len(webhook_receiver.at("/callbacks/status")) == 3)
    validator = RequestValidator(contract.token)
    for request in webhook_receiver.at("/callbacks/status"):
        assert validator.validate(url, request.form, request.headers["X-Twilio-Signature"])
        assert not RequestValidator("0" * 32).validate(
            url, request.form, request.headers["X-Twilio-Signature"]
        )
    assert [r.form["MessageStatus"] for r in webhook_receiver.at("/callbacks/status")] == [
        "sending",
        "sent",
        "undelivered",
    ]


def test_inbound_webhook_by_get_validates_with_the_request_validator(
    contract, twilio_sandbox, webhook_receiver
):
    number = twilio_sandbox.add_number(contract.sid)
    contract.client.incoming_phone_numbers(number["sid"]).update(
        sms_url=webhook_receiver.url("/in"), sms_method="GET"
    )
    twilio_sandbox.inbound(CUSTOMER, number["phone_number"], "HELP")
    (request,) = webhook_receiver.at("/in")
    assert request.method == "GET"
    full_url = webhook_receiver.base_url + request.path
    assert RequestValidator(contract.token).validate(full_url, {}, request.headers["X-Twilio-Signature"])
    assert "OptOutType=HELP" in request.path


def test_the_contract_check_rejects_what_twilio_would_not_send(contract, twilio_sandbox):
    number = twilio_sandbox.add_number(contract.sid)["phone_number"]
    contract.client.messages.create(to=CUSTOMER, from_=number, body="x")
    method, url, status, text = contract.recorder.exchanges[-1]
    schema = response_schema(
        method, urlsplit(url).path.removeprefix(urlsplit(contract.sandbox.base_url).path), status
    )
    good = json.loads(text)
    assert not list(validator(schema).iter_errors(good))
    for broken in (
        {k: v for k, v in good.items() if k != "num_segments"},  # missing field
        {**good, "num_segments": 1},  # a number where Twilio sends a string
        {**good, "status": "on-its-way"},  # not a status (through a $ref to the enum)
        {**good, "date_created": "2024-01-01T00:00:00Z"},  # not RFC 2822
        {**good, "extra": True},  # undocumented field
    ):
        assert list(validator(schema).iter_errors(broken)), broken
