"""do_send_message and the send task against the real sandbox (embedded mode runs the task inline)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from crm.models import RecordTypeConfig
from messaging.inbox.conversations import get_or_create_conversation
from messaging.media.validation import MediaFile
from messaging.models import ConsentEvent, Conversation, Message, MessagingSettings, PhoneNumber
from messaging.services.consent import do_change_consent
from messaging.services.sending import SendRefused, do_send_message
from messaging.tasks.sending import send_message_task
from tenancy.models import AuditLog, Membership
from tests import factories_send
from tests.factories_crm import ContactFactory, LeadFactory
from tests.factories_send import PDF, PNG, connect_line
from tests.plugins.servers import wait_until

line = factories_send.line
fast_rates = factories_send.fast_rates
inline_tasks = factories_send.inline_tasks


@pytest.fixture(autouse=True)
def _tasks_run_inline(inline_tasks):
    pass


CUSTOMER = "+12065550188"


def receive(conversation, body: str, minutes_ago: int = 1) -> None:
    """The customer texted in ``conversation`` (its last message is theirs, ``minutes_ago``)."""
    Conversation.objects.filter(pk=conversation.pk).update(
        last_message_at=timezone.now() - timedelta(minutes=minutes_ago),
        last_message_preview=body,
        last_message_direction="inbound",
    )


def send(org, user=None, **kwargs):
    membership = Membership.objects.get(organization=org, user=user) if user else None
    kwargs.setdefault("source", "agent" if user else "automation")
    return do_send_message(org, actor=user, membership=membership, **kwargs)


def test_agent_message_reaches_the_sandbox_with_our_id_in_the_callback_url(
    org_a, alice, line, twilio_sandbox, webhook_receiver, settings, django_capture_on_commit_callbacks
):
    settings.PUBLIC_BASE_URL = webhook_receiver.base_url
    with django_capture_on_commit_callbacks(execute=True):
        message = send(org_a, alice, to="(206) 555-0188", body="Hi there")
    message.refresh_from_db()
    at_twilio = twilio_sandbox.messages(line.sid)
    assert [m["sid"] for m in at_twilio] == [message.sid]
    assert (at_twilio[0]["to"], at_twilio[0]["from"], at_twilio[0]["body"]) == (
        CUSTOMER,
        line.number.phone_number,
        "Hi there",
    )
    assert message.status in ("queued", "sending", "sent", "delivered")
    assert (message.num_segments, message.encoding, message.send_attempts) == (1, "GSM-7", 1)
    assert message.handed_over_at is not None and message.sender == alice
    assert message.conversation.customer_number == CUSTOMER
    assert message.conversation.last_message_preview == "Hi there"
    wait_until(lambda: webhook_receiver.at("/api/status-callback"))
    assert webhook_receiver.at("/api/status-callback")[0].path == f"/api/status-callback?m={message.pk}"
    assert AuditLog.objects.filter(organization=org_a, action="message.queued", object_id=str(message.pk))


def test_record_recipient_uses_its_sms_number(
    org_a, alice, line, twilio_sandbox, django_capture_on_commit_callbacks
):
    lead = LeadFactory(organization=org_a, mobile_phone="+12065550101")
    with django_capture_on_commit_callbacks(execute=True):
        message = send(org_a, alice, record=lead, body="Hello {{first_name}}")
    assert message.to_number == "+12065550101"
    assert (message.conversation.record_type, message.conversation.record_id) == ("lead", lead.pk)
    wait_until(lambda: twilio_sandbox.received("+12065550101"))


@pytest.mark.parametrize(
    "source,how", [("agent", "to"), ("api", "record"), ("automation", "conversation"), ("campaign", "to")]
)
def test_stop_refuses_every_send_path_and_nothing_reaches_the_sandbox(
    org_a, alice, line, twilio_sandbox, source, how, django_capture_on_commit_callbacks
):
    contact = ContactFactory(organization=org_a, mobile_phone=CUSTOMER)
    conversation, _ = get_or_create_conversation(line.number, CUSTOMER)
    target = {
        "to": {"to": CUSTOMER},
        "record": {"record": contact},
        "conversation": {"conversation": conversation},
    }
    do_change_consent(org_a, CUSTOMER, "opt_out", "keyword", keyword="STOP")
    user = alice if source in ("agent", "api") else None
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(SendRefused, match="opted out"):
            send(org_a, user, source=source, body="Still there?", **target[how])
    assert Message.objects.count() == 0
    assert twilio_sandbox.messages(line.sid) == []

    do_change_consent(org_a, CUSTOMER, "opt_in", "keyword", keyword="START")
    with django_capture_on_commit_callbacks(execute=True):
        message = send(org_a, user, source=source, body="Welcome back", **target[how])
    message.refresh_from_db()
    assert message.sid and [m["sid"] for m in twilio_sandbox.messages(line.sid)] == [message.sid]


def test_a_message_queued_before_stop_is_not_sent(
    org_a, alice, line, twilio_sandbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        message = send(org_a, alice, to=CUSTOMER, body="Reminder")
    do_change_consent(org_a, CUSTOMER, "opt_out", "keyword", keyword="STOP")
    for callback in callbacks:  # the commit happens now: the task runs after the STOP
        callback()
    message.refresh_from_db()
    assert message.status == "failed" and message.sid is None
    assert "opted out" in message.error_message
    assert message.handed_over_at is None
    assert twilio_sandbox.messages(line.sid) == []


def test_same_idempotency_key_returns_the_first_message_and_sends_once(
    org_a, alice, line, twilio_sandbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = send(org_a, alice, to=CUSTOMER, body="Once", idempotency_key="k-1")
        again = send(org_a, alice, to=CUSTOMER, body="Once", idempotency_key="k-1")
        other = send(org_a, alice, to=CUSTOMER, body="Once", idempotency_key="k-2")
    assert again.pk == first.pk and other.pk != first.pk
    assert len(twilio_sandbox.messages(line.sid)) == 2


def test_an_expired_idempotency_key_may_be_used_again(org_a, alice, line, django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    with django_capture_on_commit_callbacks(execute=True):
        first = send(org_a, alice, to=CUSTOMER, body="Day one", idempotency_key="daily")
    Message.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(hours=25))
    with django_capture_on_commit_callbacks(execute=True):
        second = send(org_a, alice, to=CUSTOMER, body="Day two", idempotency_key="daily")
    assert second.pk != first.pk
    first.refresh_from_db()
    assert first.idempotency_key == ""


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change,reason",
    [
        ({"do_not_contact": True}, "marked do not contact"),
        ({"allow_sms": False}, "“Allow SMS” turned off"),
        ({"mobile_phone": ""}, "has no number to text"),
    ],
)
def test_record_that_may_not_be_texted_is_refused_with_its_reason(org_a, alice, line, change, reason):
    lead = LeadFactory(organization=org_a, **{"mobile_phone": CUSTOMER, **change})
    with pytest.raises(SendRefused, match=reason):
        send(org_a, alice, record=lead, body="Hi")
    if change.get("mobile_phone") is None:
        # The bare number of a record that may not be texted is refused too.
        with pytest.raises(SendRefused, match=reason):
            send(org_a, alice, to=CUSTOMER, body="Hi")
    assert Message.objects.count() == 0


def test_raw_number_takes_the_record_types_default_country(org_a, alice, line):
    config = RecordTypeConfig.for_type(org_a.pk, "contact")
    config.default_country = "44"
    config.save()
    message = send(org_a, alice, to="07911 123456", body="Hello from London")
    assert message.to_number == "+447911123456"


@pytest.mark.parametrize(
    "kwargs,reason",
    [
        ({"to": "12345"}, "not a valid phone number"),
        ({"to": CUSTOMER, "body": "x" * 1601}, "at most 1,600 characters"),
        ({"to": CUSTOMER, "body": "   "}, "The message is empty"),
        ({}, "exactly one"),
        ({"to": CUSTOMER, "from_number": "+19995550100"}, "not one of this organization's numbers"),
    ],
)
def test_invalid_input_is_refused_in_plain_words(org_a, alice, line, kwargs, reason):
    kwargs.setdefault("body", "Hi")
    with pytest.raises(SendRefused, match=reason):
        send(org_a, alice, **kwargs)
    assert Message.objects.count() == 0


def test_agent_may_only_send_from_assigned_numbers(org_a, aaron, line, twilio_sandbox):
    with pytest.raises(SendRefused, match="not allowed to send from"):
        send(org_a, aaron, to=CUSTOMER, body="Hi")
    line.number.assigned_members.add(Membership.objects.get(user=aaron))
    assert send(org_a, aaron, to=CUSTOMER, body="Hi").from_number == line.number.phone_number


def test_sender_falls_back_from_conversation_to_member_to_org_default(org_a, alice, line, twilio_sandbox):
    from messaging.models import MemberMessagingSettings

    other = connect_line(twilio_sandbox, org_a, default=False)
    third = connect_line(twilio_sandbox, org_a, default=False)
    assert send(org_a, alice, to=CUSTOMER, body="a").from_number == line.number.phone_number  # org default
    MemberMessagingSettings.objects.create(
        organization=org_a, membership=Membership.objects.get(user=alice), default_number=other.number
    )
    # Someone never texted before: the member's default (CUSTOMER has a thread on the org default now).
    assert send(org_a, alice, to="+12065550166", body="b").from_number == other.number.phone_number
    conversation, _ = get_or_create_conversation(third.number, "+12065550177")
    assert send(org_a, alice, conversation=conversation, body="c").from_number == third.number.phone_number
    explicit = send(org_a, alice, to=CUSTOMER, body="d", from_number=line.number.sid)
    assert explicit.from_number == line.number.phone_number
    MessagingSettings.objects.filter(organization=org_a).update(default_number=None)
    with pytest.raises(SendRefused, match="Choose a number"):
        send(org_a, None, to="+12065550155", body="e")


def test_a_reply_comes_from_the_number_the_person_texted_after_the_default_changed(
    org_a, alice, line, twilio_sandbox
):
    from messaging.models import MemberMessagingSettings

    texted = line.number
    conversation, _ = get_or_create_conversation(texted, CUSTOMER, record_type="", record_id=None)
    receive(conversation, "Is the flat still free?")
    newer = connect_line(twilio_sandbox, org_a, default=True)  # the organization's default changes
    MemberMessagingSettings.objects.create(
        organization=org_a, membership=Membership.objects.get(user=alice), default_number=newer.number
    )
    contact = ContactFactory(organization=org_a, mobile_phone=CUSTOMER)
    for user, target in ((alice, {"record": contact}), (None, {"to": CUSTOMER}), (alice, {"to": CUSTOMER})):
        reply = send(org_a, user, body="Yes it is", **target)
        assert reply.from_number == texted.phone_number
        assert reply.conversation_id == conversation.pk
    assert Conversation.objects.filter(organization=org_a, customer_number=CUSTOMER).count() == 1
    # Someone who never texted gets the default; an explicit sender always wins.
    assert send(org_a, alice, to="+12065550166", body="Hello").from_number == newer.number.phone_number
    explicit = send(org_a, alice, to=CUSTOMER, body="From the new line", from_number=newer.number.pk)
    assert explicit.from_number == newer.number.phone_number


def test_the_reply_number_is_the_most_recent_thread_the_sender_may_use(
    org_a, alice, aaron, line, twilio_sandbox
):
    older = connect_line(twilio_sandbox, org_a, default=False)
    first, _ = get_or_create_conversation(older.number, CUSTOMER)
    receive(first, "Hello on the old line", minutes_ago=60)
    latest, _ = get_or_create_conversation(line.number, CUSTOMER)
    receive(latest, "Hello again on the new line", minutes_ago=5)
    assert send(org_a, alice, to=CUSTOMER, body="Hi").from_number == line.number.phone_number
    # Aaron may only use the older number: his reply continues the thread he can use.
    aarons = Membership.objects.get(user=aaron)
    older.number.assigned_members.add(aarons)
    assert send(org_a, aaron, to=CUSTOMER, body="Hi").from_number == older.number.phone_number
    # A thread whose number stopped sending is skipped for the next one.
    PhoneNumber.objects.filter(pk=line.number.pk).update(is_active=False)
    assert send(org_a, alice, to=CUSTOMER, body="Hi").from_number == older.number.phone_number


def test_media_needs_an_mms_capable_sender(org_a, alice, twilio_sandbox, fast_rates):
    connect_line(twilio_sandbox, org_a, mms=False)
    with pytest.raises(SendRefused, match="not MMS-capable"):
        send(org_a, alice, to=CUSTOMER, media=[MediaFile("a.png", PNG, "image/png")])


def test_oversized_and_mislabeled_media_are_refused(org_a, alice, line):
    with pytest.raises(SendRefused, match="labelled as a PNG image but its content is a PDF"):
        send(org_a, alice, to=CUSTOMER, media=[MediaFile("photo.png", PDF, "image/png")])
    big = PDF + b"0" * 600_000
    with pytest.raises(SendRefused, match="at most 500 KB"):
        send(org_a, alice, to=CUSTOMER, media=[MediaFile("big.pdf", big, "application/pdf")])
    assert Message.objects.count() == 0


@pytest.mark.parametrize(
    "to,code,words",
    [
        ("+15005550001", 21211, "not valid"),
        ("+15005550009", 21614, "not a mobile number"),
        ("+15005550002", 21612, "cannot route"),
    ],
)
def test_permanent_twilio_errors_fail_at_once_in_plain_words(
    org_a, alice, line, twilio_sandbox, to, code, words, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        message = send(org_a, alice, to=to, body="Hi")
    message.refresh_from_db()
    assert (message.status, message.error_code, message.send_attempts) == ("failed", code, 1)
    assert words in message.error_message
    assert twilio_sandbox.messages(line.sid) == []


def test_21610_fails_and_records_the_opt_out(
    org_a, alice, line, twilio_sandbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        message = send(org_a, alice, to="+15005550004", body="Hi")
    message.refresh_from_db()
    assert (message.status, message.error_code) == ("failed", 21610)
    assert "opted out" in message.error_message
    event = ConsentEvent.objects.get(organization=org_a, phone_number="+15005550004")
    assert (event.action, event.method, event.message_id) == ("opt_out", "twilio_21610", message.pk)
    with pytest.raises(SendRefused, match="opted out"):
        send(org_a, alice, to="+15005550004", body="Again")


def test_20003_marks_the_account_invalid_and_tells_its_admins(
    org_a, alice, line, twilio_sandbox, django_capture_on_commit_callbacks
):
    from messaging.signals import twilio_account_invalidated

    heard = []
    twilio_account_invalidated.connect(lambda **kw: heard.append(kw), weak=False, dispatch_uid="t20003")
    line.account.set_auth_token("0" * 32)  # Twilio no longer accepts the stored token
    line.account.save()
    try:
        with django_capture_on_commit_callbacks(execute=True):
            message = send(org_a, alice, to=CUSTOMER, body="Hi")
    finally:
        twilio_account_invalidated.disconnect(dispatch_uid="t20003")
    message.refresh_from_db()
    line.account.refresh_from_db()
    assert (message.status, message.error_code) == ("failed", 20003)
    assert line.account.status == "invalid"
    assert AuditLog.objects.filter(organization=org_a, action="twilio_account.invalidated").exists()
    assert heard and heard[0]["account_id"] == line.account.pk
    with pytest.raises(SendRefused, match="credentials checked"):
        send(org_a, alice, to=CUSTOMER, body="Again")


def test_rate_limited_requests_are_retried_then_fail_in_plain_words(
    org_a, alice, line, twilio_sandbox, settings, django_capture_on_commit_callbacks
):
    import threading

    settings.QUICKSEND_SEND_RETRY_BASE_SECONDS = 0.01
    # One request parked at the sandbox fills the account's concurrency limit of 1: ours get 429 / 20429.
    twilio_sandbox.behaviour(line.sid, concurrency_limit=1, hold_requests=True)
    parked = threading.Thread(target=factories_send.park_a_request, args=(twilio_sandbox, line))
    parked.start()
    try:
        wait_until(lambda: factories_send.account_is_busy(twilio_sandbox, line), timeout=20)
        with django_capture_on_commit_callbacks(execute=True):
            message = send(org_a, alice, to=CUSTOMER, body="Hi")
    finally:
        twilio_sandbox.behaviour(line.sid, hold_requests=False)
        parked.join(10)
    message.refresh_from_db()
    assert (message.status, message.send_attempts, message.error_code) == ("failed", 6, 20429)
    assert "after 6 tries" in message.error_message
    assert twilio_sandbox.messages(line.sid) == []


def test_a_task_for_a_message_already_handed_over_does_nothing(
    org_a, alice, line, twilio_sandbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        message = send(org_a, alice, to=CUSTOMER, body="Hi")
    assert send_message_task.apply(args=[message.pk]).get() == "done"
    assert len(twilio_sandbox.messages(line.sid)) == 1


def test_a_first_message_writes_its_conversation_with_its_preview_and_its_status_follows_it_there(
    org_a, alice, line, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = send(org_a, alice, to="+12065550177", body="Your order has shipped")
    conversation = Conversation.objects.get(pk=first.conversation_id)
    assert conversation.last_message_at == first.created_at
    assert (conversation.last_message_preview, conversation.last_message_direction) == (
        "Your order has shipped",
        "outbound",
    )
    # The send task ran after commit: the list shows the newest message's status.
    first.refresh_from_db()
    assert first.status == "queued" and conversation.last_message_status == "queued"
    with django_capture_on_commit_callbacks(execute=True):
        second = send(org_a, alice, to="+12065550177", body="It arrives tomorrow")
    conversation.refresh_from_db()
    assert second.conversation_id == conversation.pk
    assert (conversation.last_message_at, conversation.last_message_preview) == (
        second.created_at,
        "It arrives tomorrow",
    )
