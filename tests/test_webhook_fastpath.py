"""The webhook fast path (messaging.twilio.webhook_asgi) and the drains behind it (messaging.twilio.ingest):
what the production server answers on Twilio's two paths, and how stored events are claimed and processed."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from urllib.parse import urlencode

import pytest
import requests
from django.conf import settings
from django.db import OperationalError
from django.http import QueryDict
from django.utils import timezone
from hypothesis import given
from hypothesis import settings as settings_hyp
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from messaging.models import InboundEvent, Message, StatusEvent
from messaging.tasks import receiving as receiving_tasks
from messaging.twilio import ingest, webhook_asgi
from messaging.twilio.public_urls import INCOMING_SMS_PATH, STATUS_CALLBACK_PATH
from messaging.twilio.signatures import Form, VerifiedAccount, compute_signature, signature_matches
from tests import receive_helpers
from tests.plugins import servers
from tests.receive_helpers import Line, sign

_fresh_token_cache = receive_helpers._fresh_token_cache
eager_tasks = receive_helpers.eager_tasks
CUSTOMER = "+12025550188"


@pytest.fixture
def line(org_a):
    return Line(org_a)


@pytest.fixture(autouse=True)
def _writer_closed():
    """The writer thread's connection must not outlive the test (the test database is dropped at the end)."""
    yield
    webhook_asgi.shutdown()


async def call_async(app, path: str, body: bytes, headers: dict[str, str], method="POST", query: str = ""):
    """One HTTP request through an ASGI app on the running event loop: (status, headers, body)."""
    received: list[dict] = []
    chunks = [body[i : i + 1000] for i in range(0, len(body), 1000)] or [b""]
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        received.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    await app(scope, receive, send)
    start = received[0]
    return start["status"], dict(start["headers"]), b"".join(m.get("body", b"") for m in received[1:])


def call(app, path: str, body: bytes, headers: dict[str, str], method: str = "POST", query: str = ""):
    """One HTTP request through an ASGI app in this process: (status, headers, body)."""
    return asyncio.run(call_async(app, path, body, headers, method, query))


class Fallback:
    """Stands for Django behind the fast path: records what reached it."""

    def __init__(self):
        self.paths: list[tuple[str, str]] = []

    async def __call__(self, scope, receive, send):
        self.paths.append((scope["method"], scope["path"]))
        await send({"type": "http.response.start", "status": 405, "headers": []})
        await send({"type": "http.response.body", "body": b"django"})


def signed(line, path: str, params: dict, query: str = "") -> tuple[bytes, dict]:
    url = settings.PUBLIC_BASE_URL.rstrip("/") + path + (f"?{query}" if query else "")
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": sign(line.token, url, params),
    }
    return urlencode(params).encode(), headers


@pytest.mark.django_db(transaction=True)
def test_a_signed_inbound_text_is_stored_and_processed_on_the_fast_path(line, eager_tasks):
    django = Fallback()
    app = webhook_asgi.with_webhooks(django)
    params = line.inbound(CUSTOMER, "Is the flat still available?")
    body, headers = signed(line, INCOMING_SMS_PATH, params)
    status, answer_headers, answer = call(app, INCOMING_SMS_PATH, body, headers)
    assert (status, answer) == (200, ingest.EMPTY_TWIML)
    assert answer_headers[b"content-type"] == b"text/xml"
    assert django.paths == []
    message = Message.objects.get(sid=params["MessageSid"])
    assert (message.body, message.from_number) == ("Is the flat still available?", CUSTOMER)
    assert InboundEvent.objects.get(message_sid=params["MessageSid"]).processed_at is not None
    # Twilio's retry: 200 again, nothing new.
    assert call(app, INCOMING_SMS_PATH, body, headers)[0] == 200
    assert InboundEvent.objects.count() == 1 and Message.objects.count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("problem", ["bad_signature", "json_body", "no_from", "too_large"])
def test_the_fast_path_refuses_what_it_cannot_verify_and_stores_nothing(line, problem):
    app = webhook_asgi.with_webhooks(Fallback())
    params = line.inbound(CUSTOMER, "hello")
    expected = 403
    if problem == "no_from":
        params["From"] = ""
    body, headers = signed(line, INCOMING_SMS_PATH, params)
    if problem == "bad_signature":
        headers["x-twilio-signature"] = "c2lnbmF0dXJlIGJ5IG5vYm9keQ=="
    elif problem == "json_body":
        headers["content-type"] = "application/json"
    elif problem == "too_large":
        body += b"&Padding=" + b"x" * webhook_asgi.MAX_BODY_BYTES
        expected = 413
    status, _, _ = call(app, INCOMING_SMS_PATH, body, headers)
    assert status == expected
    assert not InboundEvent.objects.exists() and not Message.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["fast", "django"])
def test_an_inbound_body_longer_than_twilio_sends_is_cut_to_1600_characters_on_both_paths(
    line, eager_tasks, client, path
):
    def deliver(body_text: str) -> Message:
        params = line.inbound(CUSTOMER, body_text)
        if path == "fast":
            body, headers = signed(line, INCOMING_SMS_PATH, params)
            assert call(webhook_asgi.with_webhooks(Fallback()), INCOMING_SMS_PATH, body, headers)[0] == 200
        else:
            assert receive_helpers.post_inbound(client, line.token, params).status_code == 200
        return Message.objects.get(sid=params["MessageSid"])

    huge = "A" * 1_599 + "é" + "x" * 200_000  # a 200 KB body, signed with the account's token
    message = deliver(huge)
    assert message.body == huge[:1_600]
    payload = InboundEvent.objects.get(message_sid=message.sid).payload
    assert (len(payload["Body"]), payload[ingest.BODY_CAPPED_FROM]) == (1_600, str(len(huge)))
    # The longest text Twilio delivers is stored whole, emoji and accents included.
    longest = ("Ça va? 👍🏽 " * 200)[:1_600]
    kept = deliver(longest)
    assert kept.body == longest
    assert ingest.BODY_CAPPED_FROM not in InboundEvent.objects.get(message_sid=kept.sid).payload


@pytest.mark.django_db(transaction=True)
def test_other_methods_and_paths_go_to_django():
    django = Fallback()
    app = webhook_asgi.with_webhooks(django)
    assert call(app, INCOMING_SMS_PATH, b"", {}, method="GET")[2] == b"django"
    assert call(app, "/api/incoming-sms/", b"", {})[2] == b"django"
    assert call(app, "/api/v1/messages", b"", {})[2] == b"django"
    assert django.paths == [
        ("GET", INCOMING_SMS_PATH),
        ("POST", "/api/incoming-sms/"),
        ("POST", "/api/v1/messages"),
    ]


@pytest.mark.django_db(transaction=True)
def test_a_database_error_answers_503_so_twilio_can_retry(line, monkeypatch, caplog):
    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(webhook_asgi, "store_events", down)
    body, headers = signed(line, INCOMING_SMS_PATH, line.inbound(CUSTOMER, "hello"))
    with caplog.at_level(logging.ERROR, logger="messaging.twilio.webhook_asgi"):
        status, _, _ = call(webhook_asgi.with_webhooks(Fallback()), INCOMING_SMS_PATH, body, headers)
    assert status == 503
    assert line.token not in caplog.text


@pytest.mark.django_db(transaction=True)
def test_webhooks_that_arrive_together_are_stored_as_one_batch_and_answered_each_on_its_own(
    line, monkeypatch, eager_tasks
):
    from tests.test_webhooks_status import outbound

    batches = []
    store = webhook_asgi.store_events

    def recording(events):
        batches.append(sorted(event.kind for event in events))
        return store(events)

    monkeypatch.setattr(webhook_asgi, "store_events", recording)
    message = outbound(line)
    texts = [line.inbound(f"+1202555{1000 + i}", f"text {i}") for i in range(5)]
    requests_ = [(INCOMING_SMS_PATH, *signed(line, INCOMING_SMS_PATH, params), "") for params in texts]
    forged = signed(line, INCOMING_SMS_PATH, line.inbound(CUSTOMER, "forged"))
    forged[1]["x-twilio-signature"] = "c2lnbmF0dXJlIGJ5IG5vYm9keQ=="
    requests_.append((INCOMING_SMS_PATH, *forged, ""))
    status_params = {"MessageSid": message.sid, "MessageStatus": "sent", "AccountSid": line.sid}
    query = f"m={message.pk}"
    requests_.append((STATUS_CALLBACK_PATH, *signed(line, STATUS_CALLBACK_PATH, status_params, query), query))
    app = webhook_asgi.with_webhooks(Fallback())

    async def all_at_once():
        return await asyncio.gather(
            *(call_async(app, path, body, headers, "POST", q) for path, body, headers, q in requests_)
        )

    statuses = [status for status, _, _ in asyncio.run(all_at_once())]
    assert statuses == [200] * 5 + [403, 200]
    assert batches == [["inbound"] * 5 + ["status"]]  # the forged one was refused before the store
    assert set(Message.objects.filter(direction="inbound").values_list("sid", flat=True)) == {
        t["MessageSid"] for t in texts
    }
    message.refresh_from_db()
    assert message.status == "sent"


@pytest.mark.django_db(transaction=True)
def test_a_status_callback_on_the_fast_path_is_stored_then_applied(line, eager_tasks):
    from tests.test_webhooks_status import outbound

    message = outbound(line)
    params = {"MessageSid": message.sid, "MessageStatus": "delivered", "AccountSid": line.sid}
    query = f"m={message.pk}"
    body, headers = signed(line, STATUS_CALLBACK_PATH, params, query=query)
    status, _, _ = call(
        webhook_asgi.with_webhooks(Fallback()), STATUS_CALLBACK_PATH, body, headers, query=query
    )
    assert status == 200
    message.refresh_from_db()
    assert message.status == "delivered" and message.delivered_at is not None
    assert not StatusEvent.objects.exists()  # applied, then deleted


@pytest.mark.django_db(transaction=True)
def test_the_production_server_answers_webhooks_without_django_middleware(tmp_path, line):
    """Through uvicorn: the webhook's answer carries none of the headers Django's middleware adds (the fast
    path answered it), while any other request on the same path still gets Django's."""
    server = servers.start_asgi_server(tmp_path, extra_env={"PUBLIC_BASE_URL": "http://hooks.example"})
    try:
        params = line.inbound(CUSTOMER, "hi")  # signed for the URL Twilio calls: PUBLIC_BASE_URL's
        headers = {"X-Twilio-Signature": sign(line.token, "http://hooks.example" + INCOMING_SMS_PATH, params)}
        answer = requests.post(server.base_url + INCOMING_SMS_PATH, data=params, headers=headers, timeout=10)
        assert answer.status_code == 200 and answer.content == ingest.EMPTY_TWIML
        assert "X-Frame-Options" not in answer.headers
        assert InboundEvent.objects.filter(message_sid=params["MessageSid"]).exists()
        other = requests.get(server.base_url + INCOMING_SMS_PATH, timeout=10)
        assert other.status_code == 405 and "X-Frame-Options" in other.headers
    finally:
        server.stop()


# --- Drains -------------------------------------------------------------------------------------------------


def _store(line, n: int) -> list[int]:
    account = VerifiedAccount(line.account.pk, line.org.pk, line.sid)
    for i in range(n):
        assert ingest.store_events([ingest.inbound_event(account, line.inbound(CUSTOMER, f"text {i}"))]) == [
            ingest.OK
        ]
    return list(InboundEvent.objects.order_by("id").values_list("id", flat=True))


@pytest.fixture
def queued_drains(monkeypatch):
    """Production-mode queueing (not eager), with every queued drain recorded instead of sent."""
    queued = []
    monkeypatch.setattr(receiving_tasks.drain_inbound_events.app.conf, "task_always_eager", False)
    for task, kind in (
        (receiving_tasks.drain_inbound_events, "inbound"),
        (receiving_tasks.drain_status_events, "status"),
    ):
        monkeypatch.setattr(task, "delay", lambda kind=kind: queued.append(kind))
        monkeypatch.setattr(task, "apply_async", lambda *args, kind=kind, **kwargs: queued.append(kind))
    for kind in ingest.DRAIN_KINDS:
        ingest.cache.delete(ingest._pending_key(kind))
    return queued


@pytest.mark.django_db
def test_a_burst_queues_one_drain_and_the_drain_reopens_the_gate(line, queued_drains):
    for _ in range(5):
        ingest.schedule_drain("inbound")
    ingest.schedule_drain("status")
    assert queued_drains == ["inbound", "status"]
    ingest.drain("inbound")  # clears its flag before it looks for work
    ingest.schedule_drain("inbound")
    assert queued_drains == ["inbound", "status", "inbound"]


@pytest.mark.django_db
def test_a_drain_that_meets_a_backlog_queues_one_helper(line, queued_drains, monkeypatch):
    monkeypatch.setattr(ingest, "_process_inbound", lambda event_id: None)  # the claim is what counts here
    _store(line, ingest._batch_size("inbound") * 2 + 3)
    ingest.drain("inbound")
    assert queued_drains == ["inbound"]  # one helper, for the full first batch; no more while it waits
    queued_drains.clear()
    InboundEvent.objects.update(processed_at=timezone.now())
    _store(line, 3)  # a trickle: the next drain's first batch is not full
    ingest.drain("inbound")
    assert queued_drains == []


@pytest.mark.django_db
def test_a_drain_out_of_time_keeps_its_place_while_the_backlog_lasts(line, queued_drains, monkeypatch):
    monkeypatch.setattr(ingest, "_process_inbound", lambda event_id: None)
    monkeypatch.setattr(ingest, "_gate_add", lambda key: False)  # another drain already waits in the queue
    _store(line, ingest._batch_size("inbound") + 5)
    ingest.drain("inbound", seconds=0)  # out of time after its first (full) batch
    assert queued_drains == ["inbound"]  # its successor, queued although the gate was taken
    queued_drains.clear()
    ingest.drain("inbound", seconds=0)  # the rest: a partial batch, nothing left to keep a place for
    assert queued_drains == []


@pytest.mark.django_db
def test_two_drains_never_claim_the_same_event_and_an_expired_lease_is_claimed_again(line):
    ids = _store(line, ingest.BATCH + 5)
    first = ingest._claim(InboundEvent, "processed_at IS NULL")
    second = ingest._claim(InboundEvent, "processed_at IS NULL")
    assert first == ids[: ingest.BATCH] and second == ids[ingest.BATCH :]
    assert ingest._claim(InboundEvent, "processed_at IS NULL") == []
    # The worker holding the first batch died: once its lease runs out, another drain takes the events over.
    InboundEvent.objects.filter(pk__in=first).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert ingest._claim(InboundEvent, "processed_at IS NULL") == first
    assert set(InboundEvent.objects.filter(pk__in=first).values_list("attempts", flat=True)) == {2}


@pytest.mark.django_db
def test_an_event_that_keeps_failing_stops_being_claimed(line):
    (event_id,) = _store(line, 1)
    InboundEvent.objects.filter(pk=event_id).update(attempts=ingest.MAX_ATTEMPTS - 1)
    assert ingest._claim(InboundEvent, "processed_at IS NULL") == [event_id]
    InboundEvent.objects.filter(pk=event_id).update(claimed_until=None)
    assert ingest._claim(InboundEvent, "processed_at IS NULL") == []


@pytest.mark.django_db
def test_a_failing_event_does_not_stop_the_drain(line, monkeypatch, caplog):
    ids = _store(line, 3)
    real = ingest._process_inbound

    def flaky(event_id):
        if event_id == ids[1]:
            raise RuntimeError("media host on fire")
        real(event_id)

    monkeypatch.setattr(ingest, "_process_inbound", flaky)
    # One by one, as texts with media or a keyword go (on PostgreSQL plain texts go as one batch).
    monkeypatch.setattr("messaging.services.inbound_batch._plain", lambda text: False)
    with caplog.at_level(logging.ERROR, logger="messaging.twilio.ingest"):
        assert ingest.drain("inbound") == {"processed": 2, "failed": 1}
    assert "tried again after a backoff" in caplog.text
    processed = dict(InboundEvent.objects.values_list("id", "processed_at"))
    assert processed[ids[0]] and processed[ids[2]] and processed[ids[1]] is None
    assert Message.objects.count() == 2
    assert InboundEvent.objects.get(pk=ids[1]).error == "RuntimeError: media host on fire"


@pytest.mark.django_db
def test_the_sweep_queues_a_drain_only_for_events_no_drain_holds(line, monkeypatch):
    queued = []
    monkeypatch.setattr(ingest, "schedule_drain", queued.append)
    assert ingest.sweep() == {"inbound": False, "status": False}
    (event_id,) = _store(line, 1)
    ingest._claim(InboundEvent, "processed_at IS NULL")
    assert ingest.sweep() == {"inbound": False, "status": False}  # a live lease: its drain is on it
    InboundEvent.objects.filter(pk=event_id).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert ingest.sweep() == {"inbound": True, "status": False}
    assert queued == ["inbound"]
    assert ingest.pending_counts() == {"inbound": 1, "status": 0}


# --- Our signature check is Twilio's ------------------------------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings_hyp(max_examples=300, deadline=None)
@given(
    fields=st.lists(st.tuples(_text, _text), max_size=12),
    token=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=32, max_size=32),
    url=st.sampled_from(
        [
            "https://hooks.example.com/api/incoming-sms",
            "https://hooks.example.com:443/api/status-callback?m=12",
            "http://127.0.0.1:8000/api/incoming-sms",
        ]
    ),
)
def test_our_signature_is_twilios_for_any_form(fields, token, url):
    """Repeated names, empty values, any Unicode: the fast path's form and signature agree with
    twilio-python's RequestValidator over Django's QueryDict."""
    body = urlencode(fields)
    expected = RequestValidator(token).compute_signature(url, QueryDict(body))
    form = Form.parse(body)
    assert compute_signature(token.encode(), url, form) == expected
    assert signature_matches(token.encode(), url, form, expected)
    assert RequestValidator(token).validate(url, form, expected)
    assert not signature_matches(token.encode(), url, form, expected[:-2] + "AA")


def test_the_port_rule_is_twilios_a_url_with_or_without_its_port_is_accepted():
    key, form = b"k" * 32, Form.parse("A=1")
    cases = [
        ("https://h.example/api/incoming-sms", "https://h.example:443/api/incoming-sms"),
        ("https://h.example:443/api/incoming-sms", "https://h.example/api/incoming-sms"),
        ("https://h.example/x", "https://h.example:8443/x"),
        ("https://h.example/x", "https://other.example/x"),
        ("https://h.example/x?m=1", "https://h.example/x?m=2"),
    ]
    for signed_url, called_url in cases:
        signature = compute_signature(key, signed_url, form)
        twilio = RequestValidator(key.decode()).validate(called_url, form, signature)
        assert signature_matches(key, called_url, form, signature) == twilio, (signed_url, called_url)
    assert not signature_matches(key, cases[3][1], form, compute_signature(key, cases[3][0], form))
