"""The inbox's part of every message we send (``actions.handle_outbound`` through its durable step): the
session, the sender's read state, the live events — with a pinned budget of queries, since it runs after
every send."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from messaging.inbox import steps
from messaging.inbox.conversations import get_or_create_conversation, record_message
from messaging.models import ConversationUserState, InboxStep, Message, MessageSession, Notification
from tests.factories_messaging import store_inbound
from tests.receive_helpers import Line

pytestmark = pytest.mark.django_db


def send(line, customer, user, body="On my way"):
    with transaction.atomic():
        conversation, created = get_or_create_conversation(line.number, customer)
        return record_message(
            conversation,
            new_conversation=created,
            direction=Message.Direction.OUTBOUND,
            source=Message.Source.AGENT,
            status="pending",
            from_number=line.number.phone_number,
            to_number=customer,
            body=body,
            sender=user,
        )


def test_filing_a_sent_reply_costs_six_statements_and_reads_the_thread_for_its_sender(
    org_a, alice, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    line = Line(org_a)
    inbound = store_inbound(line.number, "+12025550142", "Still available?")
    steps.run_step(inbound.pk, created_conversation=True)
    assert Notification.objects.filter(recipient=alice, cleared_at__isnull=True).exists()
    ConversationUserState.objects.filter(user=alice).update(unread_count=3)
    message = send(line, "+12025550142", alice)
    # Six statements and the savepoint of the test's transaction (13 before); SQLite has no upsert, so the
    # session's and the reader's rows are read, then written (three more).
    budget = 8 if connection.vendor == "postgresql" else 11
    with django_assert_max_num_queries(budget):
        assert steps.run_step(message.pk, outbound=True) is True
    state = ConversationUserState.objects.get(user=alice, conversation=message.conversation)
    assert (state.unread_count, state.last_read_message_id) == (0, message.pk)
    assert state.last_active_at is not None
    assert MessageSession.objects.get(conversation=message.conversation).message_count == 2
    assert InboxStep.objects.get(message=message).done_at is not None
    assert steps.run_step(message.pk, outbound=True) is False  # once per message
    assert MessageSession.objects.get(conversation=message.conversation).message_count == 2


def test_the_first_message_of_a_conversation_starts_its_session(org_a, alice):
    line = Line(org_a)
    message = send(line, "+12025550143", alice)
    assert steps.run_step(message.pk, outbound=True) is True
    session = MessageSession.objects.get(conversation=message.conversation)
    assert (session.message_count, session.started_at) == (1, message.created_at)
