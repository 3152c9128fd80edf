"""The inbox's step for a batch of stored outbound messages (a campaign's tick, a bulk send).

``actions.handle_outbound`` files one message in about six statements (its step, the message, its session,
the sender's read state, their notifications, the events' unread counts). A batch stored by
``messaging.services.bulk_sending.send_many`` is filed here in one transaction with a constant number of
statements, by the same rules:

- each message's step is marked done in one UPDATE (a concurrent single try of one of them waits on its row,
  then finds it done; one already done is left out);
- every message joins its session (``inbound_batch.join_sessions``: one read, one INSERT, one UPDATE);
- each sender has read the thread up to their newest message of the batch (one upsert), and their message
  and assignment notifications of those threads clear;
- after commit: ``message.created`` per message (to its thread, its sender and the owner), then one
  ``conversation.updated`` per conversation.

PostgreSQL only; elsewhere ``file_outbound`` runs the single step per message.

Messages sent one at a time through the API are filed here too, by a drain (``file_waiting``): the request
stores the message with its step and wakes the drain (``wake_filing``: one Redis ``SET NX``, and one Celery
message per burst rather than per send); the drain leases the outbound steps nobody has tried yet and files
them a batch at a time. A lost drain leaves its steps to ``steps.retry_due`` when their lease runs out.
"""

from __future__ import annotations

import logging
import time

from django.db import connection, transaction
from django.utils import timezone

from messaging.inbox import events, notifications, steps
from messaging.inbox.inbound_batch import InboundGroup, join_sessions
from messaging.inbox.visibility import inbox_settings_for
from messaging.models import ConversationUserState, InboxStep, Message, Notification
from quicksend import queue, realtime

log = logging.getLogger(__name__)

FILING_TASK = "messaging.tasks.sending.file_waiting_outbound_task"
FILING_FLAG = "inbox:outbound-filing-queued"
# Messages a drain files in one transaction; it stops after DRAIN_SECONDS and queues its successor.
DRAIN_BATCH = 100
DRAIN_SECONDS = 20.0
# Under a steady stream of API sends, a worker process starts a filing drain at most this often
# (``queue.pace``): batches of several messages instead of a drain per send. A lone send is filed at once.
PACE_SECONDS = 0.1


def wake_filing(message_id: int) -> None:
    """After the commit that stored outbound message ``message_id`` (its step written) for the drain to
    file: make sure a drain runs. Best effort (the caller's answer never depends on it): a failure is
    logged, and the step waits for ``steps.retry_due`` (the periodic job) once its lease runs out. Where
    tasks run in place (embedded mode) there is no worker to hand it to: its step runs here, now."""
    if getattr(queue.task(FILING_TASK).app.conf, "task_always_eager", False):
        steps.run_step(message_id, outbound=True)
        return
    try:
        queue.wake_drain(FILING_TASK, FILING_FLAG)
    except Exception:
        log.warning(
            "could not wake the filing of sent messages; the periodic retry will file them", exc_info=True
        )


def file_waiting(seconds: float = DRAIN_SECONDS) -> dict:
    """The drain: file the outbound messages whose step nobody has tried yet, ``DRAIN_BATCH`` at a time,
    until there are none or ``seconds`` have passed (then a successor is queued). Returns counts."""
    queue.pace(FILING_FLAG, PACE_SECONDS)
    queue.drain_started(FILING_FLAG)
    deadline = time.monotonic() + seconds
    totals = {"messages": 0, "done": 0}
    while ids := steps.lease_fresh_outbound(DRAIN_BATCH):
        done = file_outbound(ids)["done"]
        totals["messages"] += len(ids)
        totals["done"] += done
        if len(ids) < DRAIN_BATCH:
            break  # what is stored from now on has woken a drain of its own
        if time.monotonic() > deadline:
            queue.task(FILING_TASK).delay()
            break
    return totals


def file_outbound(message_ids) -> dict:
    """File ``message_ids`` (outbound messages whose steps were written): as one batch on PostgreSQL; should
    the batch fail (or elsewhere), each message's step is tried alone, and a step that fails then is
    recorded on its row and retried from there."""
    if connection.vendor == "postgresql":
        try:
            with realtime.collect():
                done = file_outbound_batch(message_ids)
            return {"messages": len(message_ids), "done": done, "batch": True}
        except Exception:
            log.exception("filing a batch of sent messages failed; one by one now")
    done = sum(bool(steps.run_step(message_id, outbound=True)) for message_id in message_ids)
    return {"messages": len(message_ids), "done": done}


@transaction.atomic
def file_outbound_batch(message_ids) -> int:
    """File the outbound messages ``message_ids`` whose inbox step is not done yet; returns how many."""
    ids = sorted({int(i) for i in message_ids})
    if not ids:
        return 0
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {InboxStep._meta.db_table} SET done_at = %s, failed_at = NULL, last_tried_at = %s "  # noqa: S608
            "WHERE message_id = ANY(%s) AND done_at IS NULL RETURNING message_id",
            [now, now, ids],
        )
        claimed = [row[0] for row in cursor.fetchall()]
    if not claimed:
        return 0
    messages = list(
        Message.objects.select_related(
            "sender", "conversation__phone_number", "conversation__owner", "conversation__team"
        )
        .filter(pk__in=claimed)
        .order_by("pk")
    )
    groups: dict[int, InboundGroup] = {}
    for message in messages:
        if message.conversation_id not in groups:
            groups[message.conversation_id] = InboundGroup(message.conversation, created=False, blocked=False)
        groups[message.conversation_id].messages.append(message)
    settings = {org: inbox_settings_for(org) for org in {m.organization_id for m in messages}}
    join_sessions(list(groups.values()), settings)
    _senders_read(messages, now)
    users: dict[int, set[int]] = {}
    for message in messages:
        told = {u for u in (message.sender_id, groups[message.conversation_id].conversation.owner_id) if u}
        users.setdefault(message.conversation_id, set()).update(told)
        events.publish_message_created(message, user_ids=told)
    events.publish_conversations_updated({pk: (g.conversation, users[pk]) for pk, g in groups.items()})
    return len(claimed)


def _senders_read(messages: list[Message], now) -> None:
    """``actions._mark_read_after_reply`` for every (thread, sender) of the batch: one upsert of their
    read state, and one UPDATE … RETURNING of their notifications (``clear_notifications_of``)."""
    newest: dict[tuple[int, int], tuple[int, int]] = {}  # (conversation, user) → (message, organization)
    for message in messages:
        if message.sender_id:
            newest[(message.conversation_id, message.sender_id)] = (message.pk, message.organization_id)
    if not newest:
        return
    table = ConversationUserState._meta.db_table
    values = ", ".join(["(%s::bigint, %s::bigint, %s::bigint, %s::bigint)"] * len(newest))
    params = [v for (c, u), (m, org) in newest.items() for v in (org, c, u, m)]
    sql = (
        f"INSERT INTO {table} (organization_id, conversation_id, user_id, unread_count, "  # noqa: S608
        "last_read_message_id, dismissed, last_active_at, updated_at) "
        "SELECT v.org, v.conversation, v.usr, 0, v.message, false, %s, %s "
        f"FROM (VALUES {values}) AS v(org, conversation, usr, message) "
        "ON CONFLICT (conversation_id, user_id) DO UPDATE SET unread_count = 0, "
        "last_read_message_id = excluded.last_read_message_id, last_active_at = excluded.last_active_at, "
        "updated_at = excluded.updated_at"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, now, *params])
    notifications.clear_notifications_of(
        list(newest), kinds=[Notification.Kind.MESSAGE, Notification.Kind.ASSIGNED], now=now
    )
