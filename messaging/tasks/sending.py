"""Celery tasks: sending. ``send_message_task(message_id)`` hands one stored message to Twilio through
``messaging.services.delivery.deliver`` and schedules the retries it asks for (the single sends of embedded
mode); ``hand_over_waiting_task`` hands the single sends of production mode over in batches, and
``deliver_batch_task`` a campaign's batch, both through ``hand_over``."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.db import InterfaceError, OperationalError

from messaging.services import delivery
from messaging.services import hand_over as hand_over_module
from quicksend.periodic import locked_job

log = logging.getLogger(__name__)


@shared_task(bind=True, max_retries=None, acks_late=True)
def send_message_task(self, message_id: int) -> str:
    """Hand message ``message_id`` to Twilio. Returns what happened, in a word.

    Throttled or retryable: the task is retried later (``self.retry(countdown=…)``), never sleeping in a
    worker. Embedded mode runs tasks inline with no broker to schedule a retry on, so there it waits in
    place (at most 5 s per wait).
    """
    while True:
        try:
            return delivery.deliver(message_id)
        except delivery.RetryLater as later:
            if not self.request.is_eager:
                raise self.retry(countdown=later.countdown, max_retries=None)
            time.sleep(min(later.countdown, 5.0))


@shared_task(bind=True, max_retries=None, acks_late=True)
def deliver_batch_task(self, message_ids: list[int]) -> dict:
    """Hand a batch of stored messages to Twilio (``hand_over``). A redelivered task (the worker died) is
    safe: every message is claimed before Twilio is called, and a claimed one is reconciled, not sent
    again."""
    return hand_over(message_ids, eager=bool(self.request.is_eager))


def hand_over(message_ids: list[int], *, eager: bool = False) -> dict:
    """Hand a batch of stored messages to Twilio (``delivery.deliver_many``); the messages that must wait
    (throttled, a retryable error) are queued again (``deliver_batch_task``), each group after its own wait,
    or, where tasks run in place (``eager``), waited for here. Returns the count of each outcome. The batches
    of campaigns and the drain of single sends (``hand_over_waiting_task``) both go through here."""
    counts: dict[str, int] = {}
    pending = list(message_ids)
    while pending:
        try:
            outcomes = delivery.deliver_many(pending)
        except (OperationalError, InterfaceError) as error:
            # The database refused the batch (a deadlock, a lost connection): the whole batch goes again in a
            # moment. What was claimed before the error is reconciled with Twilio then, never sent twice.
            if eager:
                raise
            log.warning(
                "a batch of %d hand-overs: %s; trying again", len(pending), str(error).splitlines()[0]
            )
            _try_again(dict.fromkeys(pending, 1.0))
            counts["waiting"] = counts.get("waiting", 0) + len(pending)
            break
        later = {i: w for i, w in outcomes.items() if isinstance(w, float)}
        for outcome in outcomes.values():
            word = "waiting" if isinstance(outcome, float) else outcome
            counts[word] = counts.get(word, 0) + 1
        if not later:
            break
        if not eager:
            _try_again(later)
            break
        wait = min(later.values())
        time.sleep(min(wait, 5.0))  # embedded mode: no broker to schedule the retry on
        pending = sorted(later)
    return counts


def _try_again(later: dict[int, float]) -> None:
    """Queue each message of ``later`` again after its wait (seconds): those due within the same 50 ms
    together (the throttle spaces a sender's waiting texts). The sweep of single sends leaves them alone
    meanwhile (``hand_over.note_waiting``)."""
    hand_over_module.note_waiting(later)
    now = time.time()
    hand_over_module.queue_batches({pk: now + later[pk] for pk in sorted(later)})


@shared_task(bind=True, acks_late=True)
def hand_over_waiting_task(self) -> dict:
    """The drain that hands single sends to Twilio in batches (``services.hand_over.hand_over_waiting``);
    woken after their commits (``hand_over.queue_hand_over``)."""
    eager = bool(self.request.is_eager)
    return hand_over_module.hand_over_waiting(lambda ids: hand_over(ids, eager=eager))


@shared_task(acks_late=True)
def requeue_stranded_sends() -> dict:
    """Periodic: single sends lost before their hand-over are queued again
    (``hand_over.requeue_stranded``)."""
    return _requeue_stranded_once()


@locked_job("messaging.requeue-stranded-sends", seconds=25)  # runs every 30 s; a send is claimed once
def _requeue_stranded_once() -> dict:
    return hand_over_module.requeue_stranded()


@shared_task(acks_late=True)
def file_outbound_batch_task(message_ids: list[int]) -> dict:
    """The inbox's step of each message a batch stored (its rows were written with the messages): the same
    step ``outbound_message_created`` runs for one message, for the whole batch at once on PostgreSQL
    (``inbox.outbound_batch.file_outbound``)."""
    from messaging.inbox.outbound_batch import file_outbound

    return file_outbound(message_ids)


@shared_task(acks_late=True)
def file_waiting_outbound_task() -> dict:
    """The drain that files the messages sent one at a time through the API, in batches
    (``inbox.outbound_batch.file_waiting``); woken after their commits (``wake_filing``)."""
    from messaging.inbox.outbound_batch import file_waiting

    return file_waiting()
