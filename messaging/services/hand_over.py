"""Single sends handed to Twilio in batches (docs/messaging.md "How a send reaches Twilio").

``do_send_message`` stores one message ``pending``; after its commit ``queue_hand_over(id)`` appends the id
to a Redis list and wakes the hand-over drain (``quicksend.queue.push_and_wake``: one round trip to Redis,
and one Celery message per burst of sends, not one per send). The drain (``hand_over_waiting``) takes up to
``DRAIN_BATCH`` ids at a time and hands them to Twilio with ``delivery.deliver_many`` — every check of a
single delivery (consent again at send time, the account, the sender's allowance, the claim before Twilio
is called) for a constant number of statements per batch — through the same step as a campaign's batches
(``messaging.tasks.sending.hand_over``), which queues the messages that must wait again, each at its own
turn. It goes on until the list is empty, then lets its flag go and looks once more, so a send stored while
it ran is never left without a drain. When nothing else is waiting, a lone send goes at once: one task hop.

Nothing is lost: an id taken by a drain that died, or whose push or wake failed, is found by the periodic
sweep (``requeue_stranded``): a single send still ``pending`` without a SID, stored more than
``STRANDED_SECONDS`` ago, never handed over (or claimed that long ago by a drain that died before Twilio
answered: the next try reconciles with Twilio first), and neither told to wait (``note_waiting``) nor still
in the list. Campaign
texts have their dispatcher's own sweep. Nothing is sent twice: a message is claimed (``handed_over_at``, a
conditional UPDATE committed before Twilio is called) by exactly one of the drains, retries and sweeps that
hold its id; the others find it claimed or done.

Where tasks run in place (embedded mode) a send is handed over in its own process, now, as before.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import timedelta

from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from messaging.models import Message, MessageStatus
from quicksend import queue

log = logging.getLogger(__name__)

HAND_OVER_TASK = "messaging.tasks.sending.hand_over_waiting_task"
SEND_TASK = "messaging.tasks.sending.send_message_task"
BATCH_TASK = "messaging.tasks.sending.deliver_batch_task"
HAND_OVER_FLAG = "send:hand-over-queued"
HAND_OVER_LIST = "send:hand-over"
# Messages handed over in one batch; a drain stops after DRAIN_SECONDS and queues its successor.
DRAIN_BATCH = 100
DRAIN_SECONDS = 20.0
# A batch that failed midway goes again after this long.
RETRY_SECONDS = 1.0
# A single send still waiting for its hand-over this long after it was stored was lost on the way.
STRANDED_SECONDS = 60
SWEEP_LIMIT = 500


def _eager() -> bool:
    return bool(getattr(queue.task(HAND_OVER_TASK).app.conf, "task_always_eager", False))


# Messages due within the same 50 ms are handed over by one batch task: a campaign's senders' slot clocks
# run in step, and the throttle spaces a sender's waiting texts, so each turn holds at most one text per
# sender and every sender's allowance has room for it.
TURN_SECONDS = 0.05


def queue_batches(due: dict[int, float | None]) -> None:
    """Queue the hand-over of stored messages at their due times (``due``: message id → Unix time, None or
    a past time for now): one batch task (``deliver_batch_task``) per ``TURN_SECONDS`` turn, the ids in the
    order given. Used by a campaign's dispatcher (its senders' slots) and by a batch whose messages the
    throttle told to wait."""
    now = time.time()
    turns: dict[float, list[int]] = {}
    for message_id, at in due.items():
        turn = 0.0 if at is None or at <= now else math.ceil(at / TURN_SECONDS) * TURN_SECONDS
        turns.setdefault(turn, []).append(message_id)
    batch = queue.task(BATCH_TASK)
    for turn, ids in sorted(turns.items()):
        delay = turn - now
        if delay > 0.01:
            batch.apply_async(args=[ids], countdown=delay)
        else:
            batch.delay(ids)


def queue_hand_over(message_id: int) -> None:
    """After the commit that stored single send ``message_id``: hand it over (see the module docstring).
    Should Redis fail, the message gets a task of its own; should that fail too, the sweep sends it later
    (a failure is logged, never raised). In place where tasks run in place (embedded mode)."""
    if _eager():
        queue.enqueue(SEND_TASK, message_id)
        return
    try:
        queue.push_and_wake(HAND_OVER_TASK, HAND_OVER_FLAG, HAND_OVER_LIST, [message_id])
        return
    except Exception:
        log.warning(
            "could not queue message %s for the drain; a task of its own sends it", message_id, exc_info=True
        )
    try:
        # The flag may have been set with no drain queued (an answer lost on the way back): later sends must
        # wake one. A task of its own for this message (were it in the list too, its claim sends it once).
        queue.drain_started(HAND_OVER_FLAG)
        queue.enqueue(SEND_TASK, message_id)
    except Exception:
        log.warning("could not queue message %s at all; the sweep will send it", message_id, exc_info=True)


def hand_over_waiting(hand_over, seconds: float = DRAIN_SECONDS) -> dict:
    """The drain: hand over the queued single sends, ``DRAIN_BATCH`` at a time, with ``hand_over(ids)``
    (which queues again what must wait and returns the count of each outcome), until the list is empty or
    ``seconds`` have passed (then a successor is queued, the flag held for it). Returns counts. A drain that
    fails lets its flag go (the next send wakes another); the ids it held are the sweep's."""
    deadline = time.monotonic() + seconds
    totals: dict[str, int] = {"batches": 0}
    try:
        while True:
            ids = [int(i) for i in queue.pop_items(HAND_OVER_LIST, DRAIN_BATCH)]
            if not ids:
                if queue.drain_idle(HAND_OVER_FLAG, HAND_OVER_LIST):
                    continue
                return totals
            totals["batches"] += 1
            try:
                counts = hand_over(ids)
            except Exception:
                # The batch failed midway (a claimed message is reconciled with Twilio on its next try): it
                # goes again in a moment as a batch task of its own, and the drain goes on.
                log.exception("handing over %d single sends failed; they go again in a moment", len(ids))
                queue.task(BATCH_TASK).apply_async(args=[ids], countdown=RETRY_SECONDS)
                counts = {"failed-batch": len(ids)}
            for word, count in counts.items():
                totals[word] = totals.get(word, 0) + count
            if time.monotonic() > deadline:
                queue.hold_flag(HAND_OVER_FLAG)
                queue.task(HAND_OVER_TASK).delay()
                return totals
    except Exception:
        try:
            queue.drain_started(HAND_OVER_FLAG)
        except Exception:  # noqa: S110 - the flag expires by itself
            pass
        raise


def _waiting_key(message_id: int) -> str:
    return f"send:waiting:{message_id}"


def note_waiting(waits: dict[int, float]) -> None:
    """Messages queued again to be tried in ``waits[id]`` seconds (throttled, a retryable error): the sweep
    leaves them alone until well after their turn (a lost retry is found then). Best effort."""
    if not waits:
        return
    try:
        cache.set_many(
            {_waiting_key(i): 1 for i in waits}, timeout=int(max(waits.values())) + STRANDED_SECONDS
        )
    except Exception:
        log.warning("could not note %d messages' next try; the sweep may queue them early", len(waits))


def _stranded(now) -> list[int]:
    """Single sends never handed over, or whose hand-over was cut off (a drain that died after the claim:
    the next try reconciles with Twilio), stored more than ``STRANDED_SECONDS`` ago; not those told to wait
    or still in the list."""
    long_ago = now - timedelta(seconds=STRANDED_SECONDS)
    ids = list(
        Message.objects.filter(
            Q(handed_over_at__isnull=True) | Q(handed_over_at__lt=long_ago),
            direction=Message.Direction.OUTBOUND,
            status=MessageStatus.PENDING,
            status_rank=0,
            sid__isnull=True,
            created_at__lt=long_ago,
            created_at__gte=now - timedelta(days=1),
        )
        .exclude(source=Message.Source.CAMPAIGN)
        .order_by("created_at")
        .values_list("pk", flat=True)[:SWEEP_LIMIT]
    )
    if not ids:
        return []
    told_to_wait = cache.get_many([_waiting_key(i) for i in ids])
    queued = {int(i) for i in queue.list_items(HAND_OVER_LIST)}
    return [i for i in ids if _waiting_key(i) not in told_to_wait and i not in queued]


def requeue_stranded(now=None) -> dict:
    """The sweep (a periodic job): queue again the single sends that were lost before their hand-over, and
    wake the drain for the ones still in the list (its flag may have outlived a drain that died)."""
    ids = _stranded(now or timezone.now())
    if ids:
        log.warning("single sends stranded before their hand-over, queued again: %d", len(ids))
    if _eager():
        for message_id in ids:
            queue.enqueue(SEND_TASK, message_id)
        return {"requeued": len(ids)}
    if ids:
        queue.push_and_wake(HAND_OVER_TASK, HAND_OVER_FLAG, HAND_OVER_LIST, ids)
    elif queue.list_items(HAND_OVER_LIST):
        queue.wake_drain(HAND_OVER_TASK, HAND_OVER_FLAG)
    return {"requeued": len(ids)}
