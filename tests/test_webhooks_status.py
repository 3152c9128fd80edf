"""POST /api/status-callback: forward-only statuses whatever the order, our id in the URL, messages another
tool sent, and the stuck-message poller."""

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.inbox.conversations import get_or_create_conversation, touch_conversation
from messaging.models import STATUS_RANK, Conversation, Message, MessageStatus, StatusEvent
from messaging.services.receiving import last_message_status_for_record, poll_stuck_messages
from messaging.tasks.receiving import poll_stuck_messages as poll_task
from messaging.twilio.ingest import drain
from tests import receive_helpers
from tests.factories_messaging import MessageFactory, PhoneNumberFactory, TwilioAccountFactory
from tests.plugins.servers import wait_until
from tests.receive_helpers import Line, new_sid, post_status

_fresh_token_cache = receive_helpers._fresh_token_cache
eager_tasks = receive_helpers.eager_tasks


@pytest.fixture
def line(org_a):
    return Line(org_a)


def outbound(line, customer="+12025550150", **kwargs):
    conversation, _ = get_or_create_conversation(line.number, customer)
    kwargs.setdefault("status", MessageStatus.QUEUED)
    message = MessageFactory(
        conversation=conversation,
        direction=Message.Direction.OUTBOUND,
        source=Message.Source.API,
        account=line.account,
        **kwargs,
    )
    touch_conversation(conversation, message)
    return message


# Each message's lifecycle as Twilio reports it, and where it must end.
LIFECYCLES = [
    (["sending", "sent", "delivered"], "delivered", None),
    (["sending", "sent", "undelivered"], "undelivered", 30003),
    (["sending", "failed"], "failed", 30007),
    (["sending", "sent", "delivered", "read"], "read", None),
]


@pytest.mark.django_db
def test_a_thousand_messages_with_shuffled_and_duplicated_callbacks_end_in_their_final_status(client, line):
    rng = random.Random(5)
    conversation, _ = get_or_create_conversation(line.number, "+12025550151")
    messages = Message.objects.bulk_create(
        [
            Message(
                organization=line.org,
                conversation=conversation,
                account=line.account,
                direction="outbound",
                source="api",
                status="queued",
                status_rank=STATUS_RANK["queued"],
                # A third of the messages have no SID yet: their callbacks beat the send response.
                sid=None if i % 3 == 0 else new_sid(),
                from_number=line.number.phone_number,
                to_number="+12025550151",
            )
            for i in range(1000)
        ]
    )
    messages = list(Message.objects.filter(conversation=conversation).order_by("id"))
    expected, callbacks = {}, []
    for i, message in enumerate(messages):
        statuses, final, code = LIFECYCLES[i % len(LIFECYCLES)]
        sid = message.sid or new_sid()
        expected[message.pk] = (final, code, sid)
        for status in statuses:
            error = code if status in ("undelivered", "failed") else None
            copies = 2 if rng.random() < 0.5 else 1
            callbacks += [(message.pk, sid, status, error)] * copies
    rng.shuffle(callbacks)
    for message_id, sid, status, error in callbacks:
        response = post_status(
            client, line.token, line.sid, sid, status, message_id=message_id, error_code=error
        )
        assert response.status_code == 200
    # Stored as they came; the drain applies them in arrival order.
    assert StatusEvent.objects.count() == len(callbacks)
    assert drain("status", seconds=3600)["processed"] == len(callbacks)
    assert not StatusEvent.objects.exists()
    for message in Message.objects.filter(conversation=conversation):
        final, code, sid = expected[message.pk]
        assert (message.status, message.error_code, message.sid) == (final, code, sid), message.pk
        if final in ("delivered", "read"):
            assert message.delivered_at and message.sent_at and not message.failed_at
        else:
            assert message.failed_at and message.error_message


@pytest.mark.django_db
def test_a_status_callback_for_another_organizations_message_changes_nothing(client, line, org_b):
    theirs = outbound(Line(org_b))
    response = post_status(client, line.token, line.sid, theirs.sid, "delivered", message_id=theirs.pk)
    assert response.status_code == 200
    drain("status")
    theirs.refresh_from_db()
    assert theirs.status == "queued"


@pytest.mark.django_db
@pytest.mark.parametrize("problem", ["missing", "other_account", "tampered_id"])
def test_an_unverifiable_status_callback_gets_403_and_changes_nothing(client, line, org_b, problem):
    message = outbound(line)
    other = Line(org_b)
    if problem == "missing":
        response = post_status(client, None, line.sid, message.sid, "delivered", message_id=message.pk)
    elif problem == "other_account":
        response = post_status(client, other.token, line.sid, message.sid, "delivered", message_id=message.pk)
    else:
        params = {"MessageSid": message.sid, "MessageStatus": "delivered", "AccountSid": line.sid}
        signature = receive_helpers.sign(
            line.token, f"http://testserver/api/status-callback?m={message.pk + 1}", params
        )
        response = post_status(
            client, line.token, line.sid, message.sid, "delivered", message_id=message.pk, signature=signature
        )
    assert response.status_code == 403
    assert not StatusEvent.objects.exists()
    drain("status")
    message.refresh_from_db()
    assert message.status == "queued"


@pytest.mark.django_db
def test_a_callback_for_a_message_another_tool_sent_records_it_from_twilio(
    client, twilio_sandbox, org_a, eager_tasks, django_capture_on_commit_callbacks
):
    sid, token = twilio_sandbox.new_account()
    number = twilio_sandbox.add_number(sid)
    line = Line(org_a, token=token, phone_number=number["phone_number"])
    line.account.account_sid = sid
    line.account.save()
    sent = twilio_sandbox.client(sid, token).messages.create(
        to="+12025550177", from_=number["phone_number"], body="Sent from another tool"
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert post_status(client, token, sid, sent.sid, "sent").status_code == 200
    message = Message.objects.get(sid=sent.sid)
    assert (message.direction, message.source, message.body) == (
        "outbound",
        "other_tool",
        "Sent from another tool",
    )
    assert message.conversation.phone_number_id == line.number.pk
    assert message.conversation.customer_number == "+12025550177"
    assert message.conversation.last_message_preview == "Sent from another tool"
    # A repeat callback does not record it twice; it moves it forward.
    with django_capture_on_commit_callbacks(execute=True):
        post_status(client, token, sid, sent.sid, "delivered")
    assert Message.objects.filter(sid=sent.sid).count() == 1
    message.refresh_from_db()
    assert message.status == "delivered"


@pytest.mark.django_db
def test_the_record_shows_its_last_messages_delivery_status(client, line):
    from tests.factories_crm import LeadFactory

    lead = LeadFactory(organization=line.org)
    message = outbound(line)
    Conversation.objects.filter(pk=message.conversation_id).update(record_type="lead", record_id=lead.pk)
    assert last_message_status_for_record(line.org, "lead", lead.pk)["status"] == "queued"
    post_status(
        client, line.token, line.sid, message.sid, "undelivered", message_id=message.pk, error_code=30005
    )
    drain("status")
    shown = last_message_status_for_record(line.org, "lead", lead.pk)
    assert shown["status"] == "undelivered" and "no longer in service" in shown["error_message"]
    assert last_message_status_for_record(line.org, "lead", lead.pk + 1000) is None


# --- The stuck-message poller -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_poller_asks_twilio_about_messages_stuck_for_12_hours(twilio_sandbox, org_a):
    sid, token = twilio_sandbox.new_account()
    number = twilio_sandbox.add_number(sid)
    twilio_sandbox.behaviour(sid, rates={"local": 100}, delay_ms=[0, 1])
    account = TwilioAccountFactory(organization=org_a, account_sid=sid, auth_token=token)
    line_number = PhoneNumberFactory(account=account, phone_number=number["phone_number"])
    conversation, _ = get_or_create_conversation(line_number, "+12025550188")
    client = twilio_sandbox.client(sid, token)
    delivered = client.messages.create(to="+12025550188", from_=number["phone_number"], body="one")
    failing = client.messages.create(to="+15005553005", from_=number["phone_number"], body="two")
    wait_until(
        lambda: all(
            twilio_sandbox.message(sid, s)["status"] in ("delivered", "undelivered")
            for s in (delivered.sid, failing.sid)
        )
    )
    old = timezone.now() - timedelta(hours=13)
    rows = {}
    for twilio_message in (delivered, failing):
        rows[twilio_message.sid] = MessageFactory(
            conversation=conversation,
            account=account,
            direction="outbound",
            source="api",
            status="sent",
            sid=twilio_message.sid,
        )
    fresh = MessageFactory(
        conversation=conversation, account=account, direction="outbound", source="api", status="sent"
    )
    Message.objects.filter(sid__in=rows).update(updated_at=old)

    stats = poll_stuck_messages()

    assert stats == {"checked": 2, "updated": 2, "errors": 0}
    assert Message.objects.get(sid=delivered.sid).status == "delivered"
    failed = Message.objects.get(sid=failing.sid)
    assert (failed.status, failed.error_code) == ("undelivered", 30005)
    fresh.refresh_from_db()
    assert fresh.status == "sent"  # not stuck long enough to be polled
    assert poll_stuck_messages() == {"checked": 0, "updated": 0, "errors": 0}


@pytest.mark.django_db
def test_the_poller_bumps_messages_twilio_still_reports_unfinished_and_records_errors(twilio_sandbox, org_a):
    sid, token = twilio_sandbox.new_account()
    account = TwilioAccountFactory(organization=org_a, account_sid=sid, auth_token=token)
    conversation, _ = get_or_create_conversation(PhoneNumberFactory(account=account), "+12025550189")
    unknown = MessageFactory(conversation=conversation, account=account, direction="outbound", status="sent")
    Message.objects.filter(pk=unknown.pk).update(updated_at=timezone.now() - timedelta(hours=13))
    assert poll_stuck_messages() == {"checked": 1, "updated": 0, "errors": 1}  # Twilio: 20404
    assert poll_stuck_messages() == {
        "checked": 0,
        "updated": 0,
        "errors": 0,
    }  # moved on, not re-polled at once


@pytest.mark.django_db
def test_two_poller_runs_at_once_do_not_both_run(org_a):
    from django.core.cache import cache

    assert cache.add("lock:messaging.poll_stuck_messages", 1, timeout=60)
    try:
        assert poll_task() == {"skipped": "locked"}
    finally:
        cache.delete("lock:messaging.poll_stuck_messages")
    assert poll_task() == {"checked": 0, "updated": 0, "errors": 0}


def test_the_poller_and_the_inbound_sweep_are_registered_periodic_jobs():
    from quicksend.periodic import jobs

    names = {job.name: job.task for job in jobs()}
    assert names["messaging.poll_stuck_messages"] == "messaging.tasks.receiving.poll_stuck_messages"
    assert names["messaging.requeue_inbound_events"] == "messaging.tasks.receiving.requeue_inbound_events"
