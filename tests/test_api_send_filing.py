"""A message sent through the REST API is filed in the inbox (its session, the sender's read state, the live
events) by a drain in a worker, not inside the request: exactly once, and still when the drain is lost."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.inbox import outbound_batch, steps
from messaging.models import ConversationUserState, InboxStep, MessageSession
from messaging.services import hand_over
from messaging.tasks.sending import file_waiting_outbound_task
from quicksend import queue, realtime
from tests import factories_send
from tests.factories_send import api_send

line = factories_send.line
fast_rates = factories_send.fast_rates


api = factories_send.committing_api


def _tasks_in_place(monkeypatch, eager: bool) -> None:
    monkeypatch.setattr(hand_over, "queue_hand_over", lambda *args, **kwargs: None)  # not sent here
    monkeypatch.setattr(file_waiting_outbound_task.app.conf, "task_always_eager", eager)


@pytest.fixture
def drains(monkeypatch):
    """Tasks go to workers (production mode, on either database): the drains the requests queue, not run
    (the test runs one when it means to)."""
    queued = []
    _tasks_in_place(monkeypatch, False)
    monkeypatch.setattr(file_waiting_outbound_task, "delay", lambda: queued.append("drain"))
    queue.drain_started(outbound_batch.FILING_FLAG)  # no drain of an earlier test is waiting
    return queued


@pytest.fixture
def frames(monkeypatch):
    sent = []
    monkeypatch.setattr(realtime, "deliver_many", lambda items: sent.extend(items))
    monkeypatch.setattr(realtime, "deliver", lambda groups, frame: sent.append((groups, frame)))
    return sent


def _step(message_id: int) -> InboxStep:
    return InboxStep.objects.get(message_id=message_id)


def test_an_api_send_is_filed_by_the_drain_once_and_not_in_the_request(
    api, alice, line, drains, frames, django_capture_on_commit_callbacks
):
    message_id = api_send(api, "+12065550100")
    assert _step(message_id).done_at is None, "the request left the bookkeeping to a worker"
    assert drains == ["drain"] and frames == []
    with django_capture_on_commit_callbacks(execute=True):
        assert file_waiting_outbound_task.run() == {"messages": 1, "done": 1}
    step = _step(message_id)
    assert step.done_at is not None and step.attempts == 0
    conversation_id = step.message.conversation_id
    assert MessageSession.objects.get(conversation_id=conversation_id).message_count == 1
    state = ConversationUserState.objects.get(conversation_id=conversation_id, user=alice)
    assert (state.unread_count, state.last_read_message_id) == (0, message_id)
    groups = {
        group for items, _frame in frames for group in items if _frame["event"]["type"] == "message.created"
    }
    assert groups == {f"conv.{conversation_id}", f"user.{alice.pk}"}, "the thread's watchers hear of it"
    # Filed once: a second drain, the retry of due steps and a late single try find it done.
    assert file_waiting_outbound_task.run() == {"messages": 0, "done": 0}
    assert steps.retry_due() == {"tried": 0, "done": 0, "failed": 0}
    assert steps.run_step(message_id, outbound=True) is False
    assert MessageSession.objects.get(conversation_id=conversation_id).message_count == 1


def test_a_burst_of_api_sends_is_filed_by_one_drain_in_one_batch(api, line, drains):
    ids = [api_send(api, f"+1206555020{i}", body=f"Message {i}") for i in range(3)]
    assert drains == ["drain"], "the first send queued the drain; the others found it queued"
    assert file_waiting_outbound_task.run() == {"messages": 3, "done": 3}
    assert InboxStep.objects.filter(message_id__in=ids, done_at__isnull=False).count() == 3


def test_an_api_send_whose_drain_is_lost_is_filed_by_the_retry_once_its_lease_ends(api, line, drains):
    message_id = api_send(api, "+12065550300")
    # A drain leased the step and died before filing it: no other drain takes it over …
    assert steps.lease_fresh_outbound(outbound_batch.DRAIN_BATCH) == [message_id]
    assert file_waiting_outbound_task.run() == {"messages": 0, "done": 0}
    assert steps.retry_due()["tried"] == 0, "its lease still runs"
    assert _step(message_id).done_at is None
    # … and once the lease has run out, the periodic retry files it.
    InboxStep.objects.filter(message_id=message_id).update(run_after=timezone.now() - timedelta(seconds=1))
    assert steps.retry_due() == {"tried": 1, "done": 1, "failed": 0}
    assert _step(message_id).done_at is not None
    assert MessageSession.objects.get(conversation__messages__pk=message_id).message_count == 1


def test_an_api_send_whose_drain_was_never_queued_is_filed_by_the_retry(api, line, monkeypatch, drains):
    def broker_down(*args, **kwargs):
        raise ConnectionError("the broker is down")

    monkeypatch.setattr(queue, "wake_drain", broker_down)
    message_id = api_send(api, "+12065550400")  # answered all the same
    assert _step(message_id).done_at is None
    InboxStep.objects.filter(message_id=message_id).update(run_after=timezone.now() - timedelta(seconds=1))
    assert steps.retry_due()["done"] == 1
    assert _step(message_id).done_at is not None


def test_where_tasks_run_in_place_an_api_send_is_filed_in_its_request(api, alice, line, monkeypatch):
    _tasks_in_place(monkeypatch, True)  # embedded mode: no worker to hand it to
    message_id = api_send(api, "+12065550500")
    assert _step(message_id).done_at is not None
    assert MessageSession.objects.get(conversation__messages__pk=message_id).message_count == 1
    assert file_waiting_outbound_task.run() == {"messages": 0, "done": 0}
