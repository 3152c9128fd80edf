"""History sync against the Twilio sandbox: texts sent and received by another tool on our number appear in
their conversations, marked as synced; overlapping pages and repeated runs never duplicate; a failed run
resumes where it stopped; work per run is bounded."""

import pytest
import requests

from messaging.models import Conversation, HistorySyncState, Message, MessageSession, Notification
from messaging.twilio import history_sync
from tests.factories_messaging import PhoneNumberFactory, TwilioAccountFactory, store_inbound
from tests.plugins.sandbox import fresh_phone_number
from tests.plugins.servers import wait_until


@pytest.fixture
def synced_number(twilio_sandbox, org_a):
    sid, token = twilio_sandbox.new_account()
    twilio_number = twilio_sandbox.add_number(sid)
    account = TwilioAccountFactory(organization=org_a, account_sid=sid, auth_token=token)
    number = PhoneNumberFactory(account=account, phone_number=twilio_number["phone_number"])
    return number, twilio_sandbox.client(sid, token), sid


def other_tool_sends(twilio_sandbox, client, sid, number, customers, per_customer=1):
    """Another tool sends from our number; returns the SIDs once every message has a date_sent."""
    sids = []
    for customer in customers:
        for i in range(per_customer):
            sids.append(
                client.messages.create(
                    to=customer, from_=number.phone_number, body=f"from the other tool {i}"
                ).sid
            )
    wait_until(
        lambda: all(m.get("date_sent") for m in twilio_sandbox.messages(sid) if m["sid"] in sids),
        timeout=30,
        message="the sandbox did not send the messages",
    )
    return sids


@pytest.mark.django_db
def test_sync_imports_other_tools_texts_into_their_conversations(twilio_sandbox, synced_number, alice):
    number, client, sid = synced_number
    customer = fresh_phone_number()
    sids = other_tool_sends(twilio_sandbox, client, sid, number, [customer], per_customer=3)
    twilio_sandbox.inbound(customer, number.phone_number, "reply typed in the other tool", wait=False)
    wait_until(lambda: len(twilio_sandbox.messages(sid)) == 4, timeout=15)

    stats = history_sync.sync_number(number)
    assert stats["imported"] == 4 and stats["done"] and stats["error"] == ""
    conversation = Conversation.objects.get(phone_number=number, customer_number=customer)
    synced = Message.objects.filter(conversation=conversation)
    assert set(synced.values_list("source", flat=True)) == {"sync"}
    assert set(synced.filter(direction="outbound").values_list("sid", flat=True)) == set(sids)
    assert synced.filter(direction="inbound").get().body == "reply typed in the other tool"
    assert conversation.last_message_at is not None
    assert MessageSession.objects.filter(conversation=conversation).exists()
    assert not Notification.objects.exists()  # history raises no notifications
    assert HistorySyncState.objects.get(phone_number=number).high_water is not None


@pytest.mark.django_db
def test_overlapping_pages_and_repeated_runs_do_not_duplicate(twilio_sandbox, synced_number, monkeypatch):
    number, client, sid = synced_number
    customers = [fresh_phone_number() for _ in range(3)]
    other_tool_sends(twilio_sandbox, client, sid, number, customers, per_customer=2)
    monkeypatch.setattr(history_sync, "PAGE_SIZE", 2)
    runs = []
    while True:  # one page per run: the pass resumes from the stored next page each time
        runs.append(history_sync.sync_number(number, max_pages=1))
        assert len(runs) < 20
        if runs[-1]["done"]:
            break
    assert len(runs) >= 3 and all(r["pages"] <= 1 for r in runs)
    assert Message.objects.filter(source="sync").count() == 6
    # A new pass overlaps the last one (high-water mark minus the overlap): nothing new, nothing doubled.
    again = history_sync.sync_number(number, max_pages=50)
    assert again["imported"] == 0 and again["done"]
    assert Message.objects.filter(source="sync").count() == 6
    assert Message.objects.values("sid").distinct().count() == 6
    assert Conversation.objects.filter(phone_number=number).count() == 3


@pytest.mark.django_db
def test_a_failed_run_resumes_where_it_stopped(twilio_sandbox, synced_number, monkeypatch):
    number, client, sid = synced_number
    other_tool_sends(twilio_sandbox, client, sid, number, [fresh_phone_number()], per_customer=5)
    monkeypatch.setattr(history_sync, "PAGE_SIZE", 2)
    first = history_sync.sync_number(number, max_pages=2)  # the (empty) "to" listing, one "from" page
    assert first["imported"] == 2 and not first["done"]
    state = HistorySyncState.objects.get(phone_number=number)
    assert state.resume["to"] == "" and state.resume["from"]  # "to" had nothing; "from" has a next page

    from twilio.rest.api.v2010.account.message import MessageList

    def broken(self, url):
        raise requests.ConnectionError("network down")

    monkeypatch.setattr(MessageList, "get_page", broken)
    failed = history_sync.sync_number(number, max_pages=5)
    assert failed["error"] and not failed["done"]
    state.refresh_from_db()
    assert state.last_error and state.resume["from"]
    monkeypatch.undo()
    monkeypatch.setattr(history_sync, "PAGE_SIZE", 2)
    resumed = history_sync.sync_number(number, max_pages=10)
    assert resumed["done"] and resumed["imported"] == 3
    assert Message.objects.filter(source="sync").count() == 5


@pytest.mark.django_db
def test_a_text_the_webhook_already_stored_is_not_imported_again(
    twilio_sandbox, synced_number, django_capture_on_commit_callbacks
):
    number, client, sid = synced_number
    customer = fresh_phone_number()
    twilio_sandbox.inbound(customer, number.phone_number, "came through the webhook", wait=False)
    wait_until(lambda: twilio_sandbox.messages(sid), timeout=15)
    twilio_message = twilio_sandbox.messages(sid)[0]
    with django_capture_on_commit_callbacks(execute=True):
        stored = store_inbound(number, customer, "came through the webhook", sid=twilio_message["sid"])
    stats = history_sync.sync_number(number)
    assert stats["imported"] == 0
    assert Message.objects.get(sid=twilio_message["sid"]).pk == stored.pk


@pytest.fixture(autouse=True)
def _no_settle_window(settings):
    # These tests create the Twilio history a moment before syncing it.
    settings.QUICKSEND_HISTORY_SYNC_SETTLE_SECONDS = 0


@pytest.mark.django_db
def test_a_message_younger_than_the_settle_window_is_left_for_the_next_run(settings):
    from types import SimpleNamespace

    from django.utils import timezone

    from messaging.models import Message
    from messaging.twilio.history_sync import store_twilio_message
    from tests.factories_messaging import PhoneNumberFactory

    settings.QUICKSEND_HISTORY_SYNC_SETTLE_SECONDS = 600
    number = PhoneNumberFactory()
    item = SimpleNamespace(
        sid="SM" + "1" * 32,
        direction="outbound-api",
        from_=number.phone_number,
        to="+12025550111",
        status="sent",
        body="in flight",
        num_segments="1",
        num_media="0",
        error_code=None,
        date_created=timezone.now(),
        date_sent=None,
    )
    assert store_twilio_message(number, item) is None
    assert not Message.objects.filter(sid=item.sid).exists()
    item.date_created = timezone.now() - timezone.timedelta(minutes=11)
    assert store_twilio_message(number, item) is not None
