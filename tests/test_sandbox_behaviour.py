"""The sandbox's behaviour beyond the happy path: rate limits and queues, out-of-order and duplicate
callbacks, the concurrency limit, paging and filters, fallbacks."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import requests
from twilio.base.exceptions import TwilioRestException

from tests.plugins.servers import free_port, wait_until

CUSTOMER = "+14155550166"


def handoffs(sandbox, sid: str, sender: str) -> list[tuple[float, int]]:
    messages = [m for m in sandbox.messages(sid) if m["from"] == sender and m["direction"] == "outbound-api"]
    return [(m["handoff_at"], int(m["num_segments"])) for m in messages]


def assert_within_rate(times: list[tuple[float, int]], rate: float) -> None:
    """A sender never hands off more than ``rate`` segments per second."""
    for (at, segments), (next_at, _) in zip(times, times[1:], strict=False):
        assert next_at - at >= segments / rate - 1e-6, (at, next_at, segments, rate)


def test_default_rates_are_twilios(twilio_sandbox):
    sid, _ = twilio_sandbox.new_account()
    assert twilio_sandbox.behaviour(sid)["rates"] == {"local": 1.0, "tollfree": 3.0, "shortcode": 100.0}


def test_toll_free_sender_never_exceeds_three_segments_per_second(twilio_sandbox):
    sid, token = twilio_sandbox.new_account()
    sender = twilio_sandbox.add_number(sid, type="tollfree", phone_number=None)["phone_number"]
    client = twilio_sandbox.client(sid, token)
    for i in range(3):
        client.messages.create(to=CUSTOMER, from_=sender, body=f"update {i}")
    wait_until(lambda: all(m["status"] == "delivered" for m in twilio_sandbox.messages(sid)), timeout=10)
    times = handoffs(twilio_sandbox, sid, sender)
    assert len(times) == 3
    assert_within_rate(times, 3.0)


def test_a_long_code_queues_what_exceeds_its_rate_and_other_senders_do_not_wait(twilio_sandbox):
    sid, token = twilio_sandbox.new_account()
    twilio_sandbox.behaviour(sid, rates={"local": 4})
    busy = twilio_sandbox.add_number(sid)["phone_number"]
    idle = twilio_sandbox.add_number(sid)["phone_number"]
    client = twilio_sandbox.client(sid, token)
    client.messages.create(to=CUSTOMER, from_=busy, body="x" * 200)  # two segments: two slots
    for i in range(4):
        client.messages.create(to=CUSTOMER, from_=busy, body=f"queued {i}")
    other = client.messages.create(to=CUSTOMER, from_=idle, body="not behind the others")
    wait_until(lambda: all(m["status"] == "delivered" for m in twilio_sandbox.messages(sid)), timeout=15)
    times = handoffs(twilio_sandbox, sid, busy)
    assert [segments for _, segments in times] == [2, 1, 1, 1, 1]
    assert_within_rate(times, 4.0)
    assert times[-1][0] - times[0][0] >= 5 / 4 - 1e-6
    assert twilio_sandbox.message(sid, other.sid)["handoff_at"] < times[-1][0]


def test_message_waiting_longer_than_its_validity_period_fails_30036(twilio_sandbox, webhook_receiver):
    sid, token = twilio_sandbox.new_account()
    twilio_sandbox.behaviour(sid, rates={"local": 0.9})
    sender = twilio_sandbox.add_number(sid)["phone_number"]
    client = twilio_sandbox.client(sid, token)
    client.messages.create(to=CUSTOMER, from_=sender, body="first")
    late = client.messages.create(
        to=CUSTOMER,
        from_=sender,
        body="too late",
        validity_period=1,
        status_callback=webhook_receiver.url("/s"),
    )
    wait_until(lambda: webhook_receiver.at("/s"), timeout=10)
    # Callbacks are delivered at least once (a slow receiver may get a retry): every one says failed/30036.
    callbacks = webhook_receiver.at("/s")
    assert {(c.form["MessageStatus"], c.form["ErrorCode"]) for c in callbacks} == {("failed", "30036")}
    assert client.messages(late.sid).fetch().error_code == 30036


def test_a_full_sender_queue_refuses_with_21611(twilio_sandbox):
    sid, token = twilio_sandbox.new_account()
    twilio_sandbox.behaviour(sid, rates={"local": 0.00002})  # one segment books 50,000 s (> 10 h)
    sender = twilio_sandbox.add_number(sid)["phone_number"]
    client = twilio_sandbox.client(sid, token)
    client.messages.create(to=CUSTOMER, from_=sender, body="fills the queue")
    with pytest.raises(TwilioRestException) as excinfo:
        client.messages.create(to=CUSTOMER, from_=sender, body="no room")
    assert (excinfo.value.status, excinfo.value.code) == (400, 21611)
    with pytest.raises(TwilioRestException) as excinfo:
        client.messages.create(to=CUSTOMER, from_="+15005550008", body="magic")
    assert excinfo.value.code == 21611


def test_callbacks_can_arrive_out_of_order(twilio_sandbox, webhook_receiver):
    sid, token = twilio_sandbox.new_account()
    twilio_sandbox.behaviour(sid, out_of_order=1)
    sender = twilio_sandbox.add_number(sid)["phone_number"]
    twilio_sandbox.client(sid, token).messages.create(
        to=CUSTOMER, from_=sender, body="x", status_callback=webhook_receiver.url("/s")
    )
    wait_until(lambda: len(webhook_receiver.at("/s")) == 3)
    assert [r.form["MessageStatus"] for r in webhook_receiver.at("/s")] == ["sending", "delivered", "sent"]


def test_callbacks_can_arrive_twice(twilio_sandbox, webhook_receiver):
    sid, token = twilio_sandbox.new_account()
    twilio_sandbox.behaviour(sid, duplicates=1)
    sender = twilio_sandbox.add_number(sid)["phone_number"]
    message = twilio_sandbox.client(sid, token).messages.create(
        to=CUSTOMER, from_=sender, body="x", status_callback=webhook_receiver.url("/s")
    )
    wait_until(lambda: len(webhook_receiver.at("/s")) == 6)
    statuses = [r.form["MessageStatus"] for r in webhook_receiver.at("/s")]
    assert statuses == ["sending", "sending", "sent", "sent", "delivered", "delivered"]
    assert [c["duplicate"] for c in twilio_sandbox.message(sid, message.sid)["callbacks"]] == [
        False,
        True,
    ] * 3


def test_callbacks_are_in_order_and_single_by_default(twilio_sandbox, webhook_receiver):
    sid, token = twilio_sandbox.new_account()
    sender = twilio_sandbox.add_number(sid)["phone_number"]
    client = twilio_sandbox.client(sid, token)
    for _ in range(5):
        client.messages.create(
            to=CUSTOMER, from_=sender, body="x", status_callback=webhook_receiver.url("/s")
        )
    twilio_sandbox.behaviour(sid, rates={"local": 100})
    wait_until(lambda: len(webhook_receiver.at("/s")) == 15, timeout=15)
    by_message: dict[str, list[str]] = {}
    for request in webhook_receiver.at("/s"):
        by_message.setdefault(request.form["MessageSid"], []).append(request.form["MessageStatus"])
    assert list(by_message.values()) == [["sending", "sent", "delivered"]] * 5


def test_requests_beyond_the_concurrency_limit_get_429(twilio_sandbox):
    sid, token = twilio_sandbox.new_account()
    twilio_sandbox.behaviour(sid, concurrency_limit=2, hold_requests=True)
    url = f"{twilio_sandbox.base_url}/2010-04-01/Accounts/{sid}.json"
    results: list[int] = []

    def fetch():
        results.append(requests.get(url, auth=(sid, token), timeout=20).status_code)

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    wait_until(lambda: twilio_sandbox.account(sid)["in_flight"] == 2)
    with pytest.raises(TwilioRestException) as excinfo:
        twilio_sandbox.client(sid, token).api.v2010.accounts(sid).fetch()
    assert (excinfo.value.status, excinfo.value.code) == (429, 20429)
    twilio_sandbox.behaviour(sid, hold_requests=False)
    for thread in threads:
        thread.join(timeout=20)
    assert results == [200, 200]
    assert twilio_sandbox.client(sid, token).api.v2010.accounts(sid).fetch().status == "active"


def test_an_unreachable_status_callback_is_recorded_and_the_message_still_delivered(twilio_sandbox):
    sid, token = twilio_sandbox.new_account()
    sender = twilio_sandbox.add_number(sid)["phone_number"]
    dead = f"http://127.0.0.1:{free_port()}/status"
    message = twilio_sandbox.client(sid, token).messages.create(
        to=CUSTOMER, from_=sender, body="x", status_callback=dead
    )
    wait_until(lambda: len(twilio_sandbox.message(sid, message.sid)["callbacks"]) == 3)
    recorded = twilio_sandbox.message(sid, message.sid)
    assert recorded["status"] == "delivered"
    assert all(c["http_status"] is None and c["error"] for c in recorded["callbacks"])


def test_a_status_callback_must_be_a_url(twilio_sandbox):
    sid, token = twilio_sandbox.new_account()
    sender = twilio_sandbox.add_number(sid)["phone_number"]
    with pytest.raises(TwilioRestException) as excinfo:
        twilio_sandbox.client(sid, token).messages.create(
            to=CUSTOMER, from_=sender, body="x", status_callback="ftp://nope"
        )
    assert (excinfo.value.status, excinfo.value.code) == (400, 21609)


def test_a_suspended_account_cannot_send(twilio_sandbox):
    sid, token = twilio_sandbox.new_account()
    sender = twilio_sandbox.add_number(sid)["phone_number"]
    twilio_sandbox.set_status(sid, "suspended")
    client = twilio_sandbox.client(sid, token)
    assert client.api.v2010.accounts(sid).fetch().status == "suspended"
    with pytest.raises(TwilioRestException) as excinfo:
        client.messages.create(to=CUSTOMER, from_=sender, body="x")
    assert excinfo.value.code == 10001


def test_a_number_without_mms_cannot_send_media(twilio_sandbox):
    sid, token = twilio_sandbox.new_account()
    short_code = twilio_sandbox.add_number(sid, type="shortcode", mms=False)["phone_number"]
    client = twilio_sandbox.client(sid, token)
    with pytest.raises(TwilioRestException) as excinfo:
        client.messages.create(to=CUSTOMER, from_=short_code, media_url=["https://example.test/a.png"])
    assert excinfo.value.code == 21606
    assert client.messages.create(to=CUSTOMER, from_=short_code, body="text is fine").status == "queued"


def test_released_number_disappears_from_the_list(twilio_sandbox):
    sid, token = twilio_sandbox.new_account()
    keep = twilio_sandbox.add_number(sid)
    gone = twilio_sandbox.add_number(sid)
    twilio_sandbox.remove_number(sid, gone["phone_number"])
    listed = [n.sid for n in twilio_sandbox.client(sid, token).incoming_phone_numbers.list()]
    assert listed == [keep["sid"]]


# --- listing ---------------------------------------------------------------------------------------
def test_messages_list_newest_first_with_stable_pages(twilio_sandbox):
    sid, token = twilio_sandbox.new_account()
    twilio_sandbox.behaviour(sid, rates={"local": 1000})
    sender = twilio_sandbox.add_number(sid)["phone_number"]
    client = twilio_sandbox.client(sid, token)
    sids = [client.messages.create(to=CUSTOMER, from_=sender, body=str(i)).sid for i in range(5)]
    first_page = client.messages.page(page_size=2)
    assert [m.sid for m in first_page] == sids[::-1][:2]
    client.messages.create(to=CUSTOMER, from_=sender, body="arrives while paging")
    rest = []
    page = first_page.next_page()
    while page is not None:
        rest += [m.sid for m in page]
        page = page.next_page()
    assert rest == sids[::-1][2:]
    second_page = first_page.next_page()
    assert [m.sid for m in second_page.previous_page()] == sids[::-1][:2]


def test_messages_filter_by_to_from_and_date_sent(twilio_sandbox):
    sid, token = twilio_sandbox.new_account()
    twilio_sandbox.behaviour(sid, rates={"local": 1000})
    a = twilio_sandbox.add_number(sid)["phone_number"]
    b = twilio_sandbox.add_number(sid)["phone_number"]
    client = twilio_sandbox.client(sid, token)
    m1 = client.messages.create(to=CUSTOMER, from_=a, body="1")
    m2 = client.messages.create(to="+14155550167", from_=a, body="2")
    m3 = client.messages.create(to=CUSTOMER, from_=b, body="3")
    wait_until(lambda: all(m["date_sent"] for m in twilio_sandbox.messages(sid)))
    assert {m.sid for m in client.messages.list(to=CUSTOMER)} == {m1.sid, m3.sid}
    assert {m.sid for m in client.messages.list(from_=a)} == {m1.sid, m2.sid}
    assert [m.sid for m in client.messages.list(to=CUSTOMER, from_=b)] == [m3.sid]
    now = datetime.now(UTC)
    assert len(client.messages.list(date_sent=now)) == 3  # DateSent is the whole GMT day
    assert client.messages.list(date_sent=now - timedelta(days=1)) == []
    assert len(client.messages.list(date_sent_after=now - timedelta(hours=1))) == 3
    assert client.messages.list(date_sent_before=now - timedelta(hours=1)) == []
    assert client.messages.list(date_sent_after=now + timedelta(hours=1)) == []
    today = requests.get(
        f"{twilio_sandbox.base_url}/2010-04-01/Accounts/{sid}/Messages.json",
        params={"DateSent": now.strftime("%Y-%m-%d")},
        auth=(sid, token),
        timeout=5,
    ).json()
    assert len(today["messages"]) == 3


# --- inbound ---------------------------------------------------------------------------------------
def test_inbound_falls_back_when_the_sms_url_fails(twilio_sandbox, webhook_receiver):
    sid, token = twilio_sandbox.new_account()
    number = twilio_sandbox.add_number(sid)
    webhook_receiver.reply("/broken", "oops", status=500)
    twilio_sandbox.client(sid, token).incoming_phone_numbers(number["sid"]).update(
        sms_url=webhook_receiver.url("/broken"), sms_fallback_url=webhook_receiver.url("/fallback")
    )
    result = twilio_sandbox.inbound(CUSTOMER, number["phone_number"], "hello?")
    assert len(webhook_receiver.at("/broken")) == 1 and len(webhook_receiver.at("/fallback")) == 1
    assert (result["webhook"]["url"], result["webhook"]["status_code"]) == (
        webhook_receiver.url("/fallback"),
        200,
    )


def test_inbound_to_a_number_without_sms_url_is_kept(twilio_sandbox):
    sid, token = twilio_sandbox.new_account()
    number = twilio_sandbox.add_number(sid)
    result = twilio_sandbox.inbound(CUSTOMER, number["phone_number"], "anyone?")
    assert result["webhook"]["error"] == "the number has no sms_url"
    assert twilio_sandbox.client(sid, token).messages(result["sid"]).fetch().body == "anyone?"


def test_stop_gets_twilios_confirmation_and_opt_out_is_per_account(twilio_sandbox):
    sid_a, token_a = twilio_sandbox.new_account()
    sid_b, token_b = twilio_sandbox.new_account()
    twilio_sandbox.behaviour(sid_a, rates={"local": 100})
    a = twilio_sandbox.add_number(sid_a)["phone_number"]
    b = twilio_sandbox.add_number(sid_b)["phone_number"]
    customer = "+14155550199"
    twilio_sandbox.inbound(customer, a, "UNSUBSCRIBE")
    wait_until(lambda: twilio_sandbox.received(customer))
    assert "unsubscribed" in twilio_sandbox.received(customer)[0]["body"]
    assert twilio_sandbox.account(sid_a)["opted_out"] == [customer]
    with pytest.raises(TwilioRestException):
        twilio_sandbox.client(sid_a, token_a).messages.create(to=customer, from_=a, body="x")
    assert (
        twilio_sandbox.client(sid_b, token_b).messages.create(to=customer, from_=b, body="x").status
        == "queued"
    )


def test_only_a_bare_keyword_opts_out(twilio_sandbox, webhook_receiver):
    sid, token = twilio_sandbox.new_account()
    number = twilio_sandbox.add_number(sid, sms_url=webhook_receiver.url("/in"))["phone_number"]
    twilio_sandbox.inbound(CUSTOMER, number, "please stop calling me")
    assert "OptOutType" not in webhook_receiver.at("/in")[-1].form
    assert (
        twilio_sandbox.client(sid, token).messages.create(to=CUSTOMER, from_=number, body="ok").status
        == "queued"
    )


def test_control_api_refuses_cross_site_form_posts(twilio_sandbox):
    response = requests.post(
        f"{twilio_sandbox.base_url}/control/accounts",
        data="status=active",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=5,
    )
    assert response.status_code == 415
