"""apply_status: the one forward-only status update (callbacks, the poller and the send task use it)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.inbox.conversations import touch_conversation
from messaging.models import Message, MessageStatus
from messaging.services.status import apply_status
from messaging.signals import message_status_changed
from tests.factories_messaging import MessageFactory


def outbound(**kwargs):
    kwargs.setdefault("status", MessageStatus.QUEUED)
    msg = MessageFactory(direction=Message.Direction.OUTBOUND, source=Message.Source.API, **kwargs)
    touch_conversation(msg.conversation, msg)
    return msg


@pytest.fixture
def status_events():
    seen = []

    def receiver(sender, **kwargs):
        seen.append(kwargs)

    message_status_changed.connect(receiver)
    yield seen
    message_status_changed.disconnect(receiver)


@pytest.mark.django_db
def test_a_late_sent_does_not_overwrite_delivered(django_capture_on_commit_callbacks):
    msg = outbound()
    assert apply_status(msg.pk, None, "delivered")
    assert not apply_status(msg.pk, None, "sent")
    msg.refresh_from_db()
    assert msg.status == "delivered" and msg.delivered_at is not None and msg.sent_at is not None


@pytest.mark.django_db
def test_the_first_final_status_wins_and_duplicates_change_nothing():
    msg = outbound()
    assert apply_status(None, msg.sid, "undelivered", error_code=30003)
    assert not apply_status(None, msg.sid, "undelivered", error_code=30003)
    assert not apply_status(None, msg.sid, "delivered")
    msg.refresh_from_db()
    assert msg.status == "undelivered" and msg.error_code == 30003
    assert "unreachable" in msg.error_message and msg.failed_at is not None


@pytest.mark.django_db
def test_read_may_follow_delivered():
    msg = outbound(status=MessageStatus.DELIVERED)
    assert apply_status(msg.pk, None, "read")
    msg.refresh_from_db()
    assert msg.status == "read"


@pytest.mark.django_db
def test_a_callback_that_beats_the_send_response_stores_the_sid():
    msg = outbound(status=MessageStatus.PENDING, sid=None)
    assert apply_status(msg.pk, "SM" + "a" * 32, "sent")
    msg.refresh_from_db()
    assert msg.sid == "SM" + "a" * 32 and msg.status == "sent"


@pytest.mark.django_db
def test_a_callback_with_another_messages_sid_changes_nothing():
    msg = outbound()
    assert not apply_status(msg.pk, "SM" + "b" * 32, "delivered")
    msg.refresh_from_db()
    assert msg.status == "queued"


@pytest.mark.django_db
def test_unknown_status_values_change_nothing():
    msg = outbound()
    assert not apply_status(msg.pk, None, "teleported")


@pytest.mark.django_db
def test_failed_uses_the_given_time_and_a_plain_words_reason():
    msg = outbound()
    when = timezone.now() - timedelta(minutes=5)
    assert apply_status(msg.pk, None, "failed", at=when)
    msg.refresh_from_db()
    assert msg.failed_at == when and msg.error_message and msg.error_code is None


@pytest.mark.django_db
def test_the_conversation_shows_its_last_messages_status(django_capture_on_commit_callbacks, status_events):
    older = outbound()
    newer = outbound(conversation=older.conversation)
    with django_capture_on_commit_callbacks(execute=True):
        apply_status(older.pk, None, "delivered")
    older.conversation.refresh_from_db()
    assert older.conversation.last_message_status == "queued"
    with django_capture_on_commit_callbacks(execute=True):
        apply_status(newer.pk, None, "failed", error_code=30007)
    older.conversation.refresh_from_db()
    assert older.conversation.last_message_status == "failed"
    assert [(e["message_id"], e["status"], e["error_code"]) for e in status_events] == [
        (older.pk, "delivered", None),
        (newer.pk, "failed", 30007),
    ]
    assert status_events[1]["conversation_id"] == newer.conversation_id
