"""Sending in batches (``messaging.services.bulk_sending.send_many`` and ``delivery.deliver_many``): every
check of a single send holds for every recipient, a batch sent again sends nothing twice, and a worker killed
in the middle of a batch leaves every message sent exactly once."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from messaging.models import Conversation, InboxStep, Message
from messaging.services import delivery
from messaging.services.bulk_sending import Recipient, send_many
from messaging.services.consent import do_change_consent
from messaging.tasks.sending import deliver_batch_task, file_outbound_batch_task
from tenancy.models import AuditLog
from tests import factories_send
from tests.factories_crm import LeadFactory
from tests.factories_send import FAST_RATES
from tests.plugins.servers import ROOT, server_env

line = factories_send.line
fast_rates = factories_send.fast_rates

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _no_queue(monkeypatch):
    """The tests run the tasks themselves."""
    queued = []
    monkeypatch.setattr("quicksend.queue.enqueue", lambda name, *args, **kw: queued.append((name, args)))
    return queued


def _campaign(org, recipients, **kwargs):
    return send_many(org, recipients, source=Message.Source.CAMPAIGN, source_label="Spring sale", **kwargs)


def test_every_recipient_is_checked_and_only_the_refused_are_left_out(org_a, org_b, line):
    do_change_consent(org_a, "+12065550111", "opt_out", "keyword", keyword="STOP")
    do_change_consent(org_a, "+12065550112", "block", "agent")
    do_change_consent(org_a, "+12065550113", "do_not_contact", "agent")
    do_change_consent(org_b, "+12065550114", "opt_out", "keyword", keyword="STOP")  # another organization's
    LeadFactory(organization=org_a, mobile_phone="+12065550115", do_not_contact=True)
    outsider = LeadFactory(organization=org_b, mobile_phone="+12065550116")
    lead = LeadFactory(organization=org_a, mobile_phone="+12065550117")
    result = _campaign(
        org_a,
        [
            Recipient(key="k1", to="+12065550111", body="Hi"),
            Recipient(key="k2", to="+12065550112", body="Hi"),
            Recipient(key="k3", to="+12065550113", body="Hi"),
            Recipient(key="k4", to="+12065550114", body="Hi"),
            Recipient(key="k5", to="+12065550115", body="Hi"),  # the number of a do-not-contact lead
            Recipient(key="k6", record=outsider, body="Hi"),
            Recipient(key="k7", record=lead, body="Hi"),
            Recipient(key="k8", to="not a number", body="Hi"),
            Recipient(key="k9", to="+12065550118", body="   "),
        ],
    )
    assert sorted(result.refused) == ["k1", "k2", "k3", "k5", "k6", "k8", "k9"]
    assert "opted out" in str(result.refused["k1"])
    assert "blocked" in str(result.refused["k2"])
    assert "do-not-contact" in str(result.refused["k3"])
    assert "do not contact" in str(result.refused["k5"])
    assert result.refused["k6"].field == "record"
    assert [(m.to_number, m.idempotency_key) for m in result.queued] == [
        ("+12065550114", "k4"),
        (lead.mobile_phone, "k7"),
    ]
    queued = Message.objects.filter(organization=org_a).order_by("pk")
    assert [(m.status, m.source, m.source_label, m.from_number) for m in queued] == [
        ("pending", "campaign", "Spring sale", line.number.phone_number)
    ] * 2
    assert Conversation.objects.get(customer_number=lead.mobile_phone).record_id == lead.pk
    assert InboxStep.objects.filter(message__in=queued, outbound=True, done_at__isnull=True).count() == 2
    assert AuditLog.objects.get(action="messages.queued").changes["messages"] == [m.pk for m in queued]
    assert not Message.objects.filter(organization=org_b).exists()


def test_the_same_batch_sent_again_sends_nothing_twice(org_a, line, twilio_sandbox, _no_queue):
    recipients = [Recipient(key=f"spring:{i}:1", to=f"+120655502{i:02d}", body="Sale!") for i in range(5)]
    first = _campaign(org_a, recipients)
    assert [name for name, _args in _no_queue] == [
        "messaging.tasks.sending.deliver_batch_task",
        "messaging.tasks.sending.file_outbound_batch_task",
    ]
    assert deliver_batch_task.apply(args=[[m.pk for m in first.queued]]).get() == {"sent": 5}
    again = _campaign(org_a, recipients + [Recipient(key="spring:9:1", to="+12065550299", body="Sale!")])
    assert [m.pk for m in again.existing] == [m.pk for m in first.queued]
    assert [m.idempotency_key for m in again.queued] == ["spring:9:1"]
    outcomes = delivery.deliver_many([m.pk for m in first.queued + again.queued])
    assert sorted(outcomes.values()) == ["done"] * 5 + ["sent"]
    assert len(twilio_sandbox.messages(line.sid)) == 6
    assert Message.objects.filter(organization=org_a).count() == 6


def test_consent_is_checked_again_when_the_batch_is_handed_over(org_a, line, twilio_sandbox):
    result = _campaign(
        org_a, [Recipient(key=f"k{i}", to=f"+120655503{i:02d}", body="Hello") for i in range(3)]
    )
    do_change_consent(org_a, "+12065550301", "opt_out", "keyword", keyword="STOP")
    outcomes = delivery.deliver_many([m.pk for m in result.queued])
    stopped = Message.objects.get(to_number="+12065550301")
    assert outcomes[stopped.pk] == "refused" and stopped.status == "failed"
    assert sorted(m["to"] for m in twilio_sandbox.messages(line.sid)) == ["+12065550300", "+12065550302"]


def test_the_inbox_files_each_batched_message_once(org_a, line):
    result = _campaign(org_a, [Recipient(key=f"k{i}", to=f"+120655504{i:02d}", body="Hi") for i in range(3)])
    ids = [m.pk for m in result.queued]
    assert file_outbound_batch_task.apply(args=[ids]).get()["done"] == 3
    assert file_outbound_batch_task.apply(args=[ids]).get()["done"] == 0
    assert InboxStep.objects.filter(message_id__in=ids, done_at__isnull=False).count() == 3


def test_the_inbox_files_a_batch_as_it_files_one_message(org_a, line, monkeypatch):
    """By the single step's rules (PostgreSQL files the batch at once, the embedded database one by one):
    each message joins its session, the sender has read the thread up to their newest message, their text
    notifications of it clear, and the new conversation is theirs."""
    from messaging.models import ConversationUserState, MessageSession, Notification
    from tests.factories import MembershipFactory

    agent = MembershipFactory(organization=org_a).user
    recipients = [
        Recipient(key="a1", to="+12065550410", body="First"),
        Recipient(key="a2", to="+12065550410", body="Second"),
        Recipient(key="b1", to="+12065550411", body="Hello"),
    ]
    result = _campaign(org_a, recipients, actor=agent)
    first, second, other = result.queued
    conversation = first.conversation
    assert conversation.owner_id == agent.pk and other.conversation.owner_id == agent.pk
    pending = Notification.objects.create(
        organization=org_a, recipient=agent, kind=Notification.Kind.MESSAGE, conversation=conversation
    )
    colleague = MembershipFactory(organization=org_a).user
    not_theirs = Notification.objects.create(
        organization=org_a, recipient=colleague, kind=Notification.Kind.MESSAGE, conversation=conversation
    )
    from django.db import connection

    published = []
    monkeypatch.setattr(
        "messaging.inbox.events.publish",
        lambda event_type, payload, **kwargs: published.append((event_type, payload, kwargs)),
    )
    outcome = file_outbound_batch_task.apply(args=[[first.pk, second.pk, other.pk]]).get()
    assert outcome["done"] == 3
    assert outcome.get("batch", False) == (connection.vendor == "postgresql")
    session = MessageSession.objects.get(conversation=conversation)
    assert (session.message_count, session.owner_id) == (2, agent.pk)
    assert MessageSession.objects.get(conversation=other.conversation).message_count == 1
    state = ConversationUserState.objects.get(conversation=conversation, user=agent)
    assert (state.unread_count, state.last_read_message_id) == (0, second.pk)
    pending.refresh_from_db()
    assert pending.cleared_at is not None and pending.is_read
    not_theirs.refresh_from_db()
    assert not_theirs.cleared_at is None  # a colleague who did not reply keeps theirs
    cleared = [(payload, kwargs) for kind, payload, kwargs in published if kind == "notification.cleared"]
    assert cleared == [
        (
            {"notification_ids": [pending.pk], "conversation_id": conversation.pk, "unread_total": 0},
            {"user_ids": [agent.pk]},
        )
    ]


def test_a_batch_needs_a_key_per_recipient(org_a, line):
    with pytest.raises(ValueError):
        _campaign(org_a, [Recipient(key="", to="+12065550100", body="Hi")])
    with pytest.raises(ValueError):
        _campaign(org_a, [Recipient(key="a", to="+12065550100"), Recipient(key="a", to="+12065550101")])


# Hands a stored batch to Twilio in a child process whose "worker" dies (os._exit: no cleanup) right after
# Twilio accepted the batch's third message and before its SID is stored.
CRASHING_BATCH = """
import os, sys
import django

django.setup()
from messaging.services import delivery

accepted = []


def crash(message_id, sid):
    accepted.append(sid)
    if len(accepted) == 3:
        print("killed after", len(accepted), flush=True)
        os._exit(17)


delivery._accepted_by_twilio = crash
delivery.deliver_many([int(i) for i in sys.argv[1].split(",")])
print("not killed", flush=True)
"""


def test_a_worker_killed_in_the_middle_of_a_batch_leaves_every_message_sent_exactly_once(
    org_a, line, twilio_sandbox, monkeypatch, settings
):
    extra = {
        "TWILIO_API_BASE_URL": twilio_sandbox.base_url,
        "QUICKSEND_SEND_RATES": json.dumps(FAST_RATES),
        "QUICKSEND_SEND_IN_FLIGHT_SECONDS": "0",  # the dead worker's hand-overs are reconciled at once
        "DJANGO_SETTINGS_MODULE": "quicksend.settings",
    }
    settings.QUICKSEND_SEND_IN_FLIGHT_SECONDS = 0
    result = _campaign(
        org_a, [Recipient(key=f"k{i}", to=f"+120655505{i:02d}", body=f"Hello {i}") for i in range(12)]
    )
    ids = [m.pk for m in result.queued]
    child = subprocess.run(
        [sys.executable, "-c", CRASHING_BATCH, ",".join(map(str, ids))],
        cwd=ROOT,
        env=server_env(extra),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 17, child.stdout + child.stderr
    # Killed mid-batch: every message was claimed before the first request; some reached Twilio.
    rows = Message.objects.filter(pk__in=ids)
    assert all(m.handed_over_at is not None for m in rows)
    assert 3 <= len(twilio_sandbox.messages(line.sid)) <= 12

    # The task comes back (acks_late): each message is reconciled or sent, never sent twice ("done": its
    # SID was stored before the crash).
    outcomes = delivery.deliver_many(ids)
    assert set(outcomes.values()) <= {"done", "sent", "reconciled"} and "reconciled" in outcomes.values()
    at_twilio = twilio_sandbox.messages(line.sid)
    assert sorted(m["to"] for m in at_twilio) == sorted(f"+120655505{i:02d}" for i in range(12))
    assert {m.sid for m in Message.objects.filter(pk__in=ids)} == {m["sid"] for m in at_twilio}
    assert delivery.deliver_many(ids) == dict.fromkeys(ids, "done")
