"""Single sends (an API send, an agent's reply) are handed to Twilio in batches by a drain in a worker, in
production mode: one Celery message per burst, every message at the sandbox exactly once, a throttled one
back at its turn, and nothing lost when a drain dies or cannot be woken (the sweep)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.models import Message
from messaging.services import hand_over, throttle
from messaging.tasks import sending
from messaging.tasks.sending import (
    deliver_batch_task,
    file_waiting_outbound_task,
    hand_over_waiting_task,
    requeue_stranded_sends,
)
from quicksend import queue
from tests import factories_send
from tests.concurrency import run_together
from tests.factories_send import api_send
from tests.markers import needs_production_mode
from tests.plugins.servers import wait_until

line = factories_send.line
fast_rates = factories_send.fast_rates

LATER = timedelta(seconds=hand_over.STRANDED_SECONDS + 1)


api = factories_send.committing_api


@pytest.fixture
def workers(monkeypatch):
    """Tasks go to workers (production mode, on either database): the drains the sends wake and the batches
    queued again are recorded, not run (the test runs them when it means to)."""
    woken: list[str] = []
    again: list[tuple[list[int], float]] = []
    monkeypatch.setattr(hand_over_waiting_task.app.conf, "task_always_eager", False)
    monkeypatch.setattr(file_waiting_outbound_task, "delay", lambda *args, **kwargs: None)
    monkeypatch.setattr(hand_over_waiting_task, "delay", lambda: woken.append("drain"))
    monkeypatch.setattr(
        deliver_batch_task,
        "apply_async",
        lambda args, countdown: again.append((args[0], countdown)),
    )
    return woken, again


def _at_sandbox(sandbox, found) -> list[str]:
    return sorted(m["sid"] for m in sandbox.messages(found.sid))


def _sids(ids) -> list[str]:
    return sorted(Message.objects.filter(pk__in=ids).values_list("sid", flat=True))


def test_a_burst_of_api_sends_is_handed_over_by_one_drain_each_message_once(
    api, line, twilio_sandbox, workers
):
    woken, again = workers
    ids = [api_send(api, f"+1206555010{i}", body=f"Message {i}") for i in range(5)]
    assert woken == ["drain"], "the first send woke the drain; the others found it woken"
    assert twilio_sandbox.messages(line.sid) == [], "nothing goes to Twilio from the request"
    assert hand_over_waiting_task.run() == {"batches": 1, "sent": 5}
    assert None not in _sids(ids) and _at_sandbox(twilio_sandbox, line) == _sids(ids)
    # Once: a second drain, the sweep and a late single try find nothing to send.
    assert hand_over_waiting_task.run() == {"batches": 0}
    assert hand_over.requeue_stranded(timezone.now() + LATER) == {"requeued": 0}
    assert sending.send_message_task.apply(args=[ids[0]]).get() == "done"
    assert len(twilio_sandbox.messages(line.sid)) == 5 and again == []
    # The drain let its flag go: a lone send later wakes a drain of its own at once.
    lone = api_send(api, "+12065550163")
    assert woken == ["drain", "drain"]
    assert hand_over_waiting_task.run() == {"batches": 1, "sent": 1}
    assert Message.objects.get(pk=lone).sid in _at_sandbox(twilio_sandbox, line)


def test_a_send_stored_while_the_drain_runs_is_handed_over_by_that_drain(api, line, twilio_sandbox, workers):
    woken, _again = workers
    first = api_send(api, "+12065550200")
    later: list[int] = []

    def hand_over_and_meanwhile_a_send(ids):
        if not later:
            later.append(api_send(api, "+12065550201"))  # finds the drain's flag held: wakes nobody
        return sending.hand_over(ids)

    totals = hand_over.hand_over_waiting(hand_over_and_meanwhile_a_send)
    assert woken == ["drain"] and totals == {"batches": 2, "sent": 2}
    assert _at_sandbox(twilio_sandbox, line) == _sids([first, *later])


def test_a_send_pushed_as_the_drain_lets_its_flag_go_is_not_left_without_a_drain(workers):
    woken, _again = workers
    queue.push_and_wake(hand_over.HAND_OVER_TASK, hand_over.HAND_OVER_FLAG, hand_over.HAND_OVER_LIST, [1])
    assert queue.pop_items(hand_over.HAND_OVER_LIST, 100) == ["1"]
    # A writer pushes after the drain's last empty look and before it lets the flag go: no drain is woken …
    assert not queue.push_and_wake(
        hand_over.HAND_OVER_TASK, hand_over.HAND_OVER_FLAG, hand_over.HAND_OVER_LIST, [2]
    )
    # … so the drain, looking again once its flag is gone, takes the flag back and goes on.
    assert queue.drain_idle(hand_over.HAND_OVER_FLAG, hand_over.HAND_OVER_LIST) is True
    assert queue.pop_items(hand_over.HAND_OVER_LIST, 100) == ["2"]
    assert queue.drain_idle(hand_over.HAND_OVER_FLAG, hand_over.HAND_OVER_LIST) is False
    assert woken == ["drain"]


def test_a_throttled_batch_comes_back_at_its_turns_and_the_sweep_leaves_it_alone(
    api, line, twilio_sandbox, workers, settings
):
    _woken, again = workers
    settings.QUICKSEND_SEND_RATES = {**factories_send.FAST_RATES, "local": 1}  # a long code: 1 a second
    throttle.reset(line.number.pk)
    ids = [api_send(api, f"+1206555030{i}", body=f"Slow {i}") for i in range(3)]
    assert hand_over_waiting_task.run() == {"batches": 1, "sent": 1, "waiting": 2}
    assert len(twilio_sandbox.messages(line.sid)) == 1
    waiting = sorted(i for batch, _countdown in again for i in batch)
    assert waiting == ids[1:], "the two that must wait are queued again, not dropped"
    countdowns = sorted(countdown for _batch, countdown in again)
    assert len(again) == 2 and 0 < countdowns[0] < countdowns[1], "each at its own turn, a second apart"
    # Told to wait: the sweep does not queue them a second time.
    assert hand_over.requeue_stranded(timezone.now() + LATER) == {"requeued": 0}
    # Their turns come (the allowance is back): the queued batches send them, once each.
    settings.QUICKSEND_SEND_RATES = factories_send.FAST_RATES
    throttle.reset(line.number.pk)
    for batch, _countdown in list(again):
        assert deliver_batch_task.run(batch) == {"sent": 1}
    assert _at_sandbox(twilio_sandbox, line) == _sids(ids)


def test_the_sweep_hands_over_a_send_whose_id_a_dead_drain_took(api, line, twilio_sandbox, workers):
    woken, _again = workers
    message_id = api_send(api, "+12065550400")
    # A drain took the id and died (its flag runs out by itself).
    assert queue.pop_items(hand_over.HAND_OVER_LIST, hand_over.DRAIN_BATCH) == [str(message_id)]
    queue.drain_started(hand_over.HAND_OVER_FLAG)
    assert hand_over.requeue_stranded() == {"requeued": 0}, "too young to be stranded"
    assert requeue_stranded_sends.run() == {"requeued": 0}
    assert hand_over.requeue_stranded(timezone.now() + LATER) == {"requeued": 1}
    assert woken == ["drain", "drain"], "the sweep woke a drain"
    assert hand_over_waiting_task.run() == {"batches": 1, "sent": 1}
    assert _at_sandbox(twilio_sandbox, line) == _sids([message_id])


def _down(*args, **kwargs):
    raise ConnectionError("down")


def test_a_send_that_cannot_be_pushed_to_the_drain_gets_a_task_of_its_own(api, line, workers, monkeypatch):
    woken, _again = workers
    tasks = []
    monkeypatch.setattr(sending.send_message_task, "delay", lambda message_id: tasks.append(message_id))
    with monkeypatch.context() as patch:
        patch.setattr(queue, "push_and_wake", _down)
        message_id = api_send(api, "+12065550500")  # answered all the same
    assert tasks == [message_id] and woken == []
    assert sending.send_message_task.apply(args=[message_id]).get() == "sent"


def test_the_sweep_hands_over_a_send_whose_hand_over_could_not_be_queued_at_all(
    api, line, twilio_sandbox, workers, monkeypatch
):
    with monkeypatch.context() as patch:
        patch.setattr(queue, "push_and_wake", _down)
        patch.setattr(sending.send_message_task, "delay", _down)
        message_id = api_send(api, "+12065550510")  # answered all the same
    assert hand_over_waiting_task.run() == {"batches": 0}
    assert hand_over.requeue_stranded(timezone.now() + LATER) == {"requeued": 1}
    assert hand_over_waiting_task.run() == {"batches": 1, "sent": 1}
    assert _at_sandbox(twilio_sandbox, line) == _sids([message_id])


def test_a_batch_that_fails_midway_goes_again_and_the_drain_goes_on(api, line, workers):
    _woken, again = workers
    message_id = api_send(api, "+12065550520")
    calls = []

    def fails_once(ids):
        calls.append(ids)
        if len(calls) == 1:
            raise RuntimeError("the batch broke")
        return sending.hand_over(ids)

    queue.push_and_wake(hand_over.HAND_OVER_TASK, hand_over.HAND_OVER_FLAG, hand_over.HAND_OVER_LIST, [4242])
    totals = hand_over.hand_over_waiting(fails_once)
    assert again == [([message_id, 4242], hand_over.RETRY_SECONDS)], "the failed batch goes again"
    assert totals == {"batches": 1, "failed-batch": 2} and calls == [[message_id, 4242]]
    assert deliver_batch_task.run([message_id, 4242]) == {"sent": 1, "missing": 1}


def test_a_send_claimed_by_a_drain_that_died_is_reconciled_not_sent_twice(api, line, twilio_sandbox, workers):
    message_id = api_send(api, "+12065550600")
    assert queue.pop_items(hand_over.HAND_OVER_LIST, hand_over.DRAIN_BATCH) == [str(message_id)]
    # Claimed (the drain died before Twilio got it): not sent by the sweep's drain without reconciling.
    Message.objects.filter(pk=message_id).update(handed_over_at=timezone.now() - 2 * LATER, send_attempts=1)
    queue.drain_started(hand_over.HAND_OVER_FLAG)
    assert hand_over.requeue_stranded(timezone.now()) == {"requeued": 0}, "stored too recently"
    assert hand_over.requeue_stranded(timezone.now() + LATER) == {"requeued": 1}
    assert hand_over_waiting_task.run() == {"batches": 1, "sent": 1}
    assert _at_sandbox(twilio_sandbox, line) == _sids([message_id])
    message = Message.objects.get(pk=message_id)
    assert message.send_attempts == 2


def test_an_id_queued_twice_is_sent_once(api, line, twilio_sandbox, workers):
    message_id = api_send(api, "+12065550700")
    # The sweep queued it again while a drain held it: one batch holds it twice, the next batch once more.
    queue.push_and_wake(
        hand_over.HAND_OVER_TASK, hand_over.HAND_OVER_FLAG, hand_over.HAND_OVER_LIST, [message_id]
    )
    assert sending.hand_over([message_id, message_id]) == {"sent": 1}
    assert hand_over_waiting_task.run() == {"batches": 1, "done": 1}
    assert _at_sandbox(twilio_sandbox, line) == _sids([message_id])


@needs_production_mode
@pytest.mark.django_db(transaction=True)
def test_two_drains_and_the_sweep_holding_the_same_ids_at_once_send_each_once(
    org_a, alice, line, twilio_sandbox, workers
):
    from messaging.services.sending import do_send_message
    from tenancy.models import Membership

    _woken, again = workers
    membership = Membership.objects.get(organization=org_a, user=alice)
    ids = [
        do_send_message(org_a, actor=alice, membership=membership, source="api", to=f"+120655508{i:02d}",
                        body=f"Race {i}").pk
        for i in range(20)
    ]  # fmt: skip
    twilio_sandbox.behaviour(line.sid, delay_ms=[20, 40])  # the Twilio requests overlap the other claims
    outcomes, errors = run_together(lambda _i: sending.hand_over(ids), range(3))
    assert errors == [] and len(outcomes) == 3
    assert sum(o.get("sent", 0) for o in outcomes) == 20, outcomes
    # The others found each message claimed or done (or still in flight: queued again, then done).
    for batch, _countdown in again:
        assert set(sending.hand_over(batch)) <= {"done"}
    assert _at_sandbox(twilio_sandbox, line) == _sids(ids) and len(set(_sids(ids))) == 20


def test_where_tasks_run_in_place_a_send_is_handed_over_in_its_request(
    api, line, twilio_sandbox, monkeypatch
):
    monkeypatch.setattr(hand_over_waiting_task.app.conf, "task_always_eager", True)
    message_id = api_send(api, "+12065550900")
    assert _at_sandbox(twilio_sandbox, line) == _sids([message_id])
    assert queue.list_items(hand_over.HAND_OVER_LIST) == []


@pytest.fixture
def worker_env(twilio_sandbox, monkeypatch):
    """What the Celery worker process needs to reach this test's sandbox."""
    import json

    for key, value in {
        "TWILIO_API_BASE_URL": twilio_sandbox.base_url,
        "QUICKSEND_SEND_RATES": json.dumps(factories_send.FAST_RATES),
        "DJANGO_SETTINGS_MODULE": "quicksend.settings",
    }.items():
        monkeypatch.setenv(key, value)


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_hands_a_burst_of_api_sends_to_twilio_each_once(
    api, line, twilio_sandbox, worker_env, celery_worker_process
):
    ids = [api_send(api, f"+120655510{i:02d}", body=f"Burst {i}") for i in range(30)]
    wait_until(
        lambda: not Message.objects.filter(pk__in=ids, sid__isnull=True).exists(),
        timeout=60,
        message="not every send reached Twilio",
    )
    assert _at_sandbox(twilio_sandbox, line) == _sids(ids) and len(set(_sids(ids))) == 30
    log = celery_worker_process.log()
    assert "hand_over_waiting_task[" in log and "send_message_task[" not in log, "no task per send"


def test_messages_due_within_the_same_turn_are_handed_over_by_one_batch_task(monkeypatch):
    # One helper queues the batches for a campaign's slots and for the texts the throttle told to wait.
    queued = []
    batch = queue.task(hand_over.BATCH_TASK)
    monkeypatch.setattr(batch, "delay", lambda ids: queued.append((0.0, ids)))
    monkeypatch.setattr(batch, "apply_async", lambda args, countdown: queued.append((countdown, args[0])))
    monkeypatch.setattr(hand_over.time, "time", lambda: 1000.0)
    hand_over.queue_batches({5: None, 3: 999.0, 9: 1000.12, 7: 1000.11, 8: 1000.31, 1: 1000.149})
    assert [(round(countdown, 3), ids) for countdown, ids in queued] == [
        (0.0, [5, 3]),  # now or overdue: at once
        (0.15, [9, 7, 1]),  # the turn ending 0.15 s from now, in the order given
        (0.35, [8]),
    ]
