"""A Celery worker killed in the middle of a batch (production mode, real worker processes): the batch's
transaction never commits, so none of its events is half done; a new worker takes them over when their
lease runs out, and every event is processed exactly once — one message per inbound text, filed once in
the inbox (unread counts, notifications, sessions), and every status callback applied and gone.

The worker is caught mid-batch deterministically: the test holds a row lock the batch needs (one
conversation, or one message), waits until the worker's database session is blocked on it inside the
batch's transaction, then kills the worker (SIGKILL) and lets the lock go."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from messaging.models import (
    ConversationUserState,
    InboundEvent,
    InboxStep,
    Message,
    MessageSession,
    Notification,
    StatusEvent,
)
from messaging.twilio import ingest
from messaging.twilio.signatures import VerifiedAccount
from tenancy.models import Role
from tests import receive_helpers
from tests.factories import MembershipFactory
from tests.factories_messaging import store_inbound
from tests.markers import needs_production_mode
from tests.plugins import servers
from tests.receive_helpers import Line

pytestmark = [needs_production_mode, pytest.mark.django_db(transaction=True), pytest.mark.faults]
_fresh_token_cache = receive_helpers._fresh_token_cache
TEXTS = 60


class Lock:
    """A row lock held by another database session than the test's (the worker must wait for it)."""

    def __init__(self, table: str, row_id: int):
        db = connection.settings_dict
        self.conn = psycopg.connect(
            host=db.get("HOST") or "127.0.0.1",
            port=db.get("PORT") or 5432,
            user=db.get("USER") or "postgres",
            password=db.get("PASSWORD") or None,
            dbname=db["NAME"],
        )
        self.conn.execute(f"SELECT id FROM {table} WHERE id = %s FOR UPDATE", [row_id])  # noqa: S608
        self.pid = self.conn.info.backend_pid

    def someone_waits(self) -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> %s",
                [self.pid],
            )
            return cursor.fetchone()[0] > 0

    def release(self) -> None:
        self.conn.rollback()
        self.conn.close()


@pytest.fixture
def locks():
    held = []

    def lock(table: str, row_id: int) -> Lock:
        held.append(Lock(table, row_id))
        return held[-1]

    yield lock
    for lock in held:  # a test that failed before letting go must not hold the teardown up
        if not lock.conn.closed:
            lock.release()


@pytest.fixture
def workers(tmp_path):

    with servers.celery_workers(tmp_path) as start:
        yield start


def kill_mid_batch(worker, lock: Lock) -> None:
    servers.wait_until(lock.someone_waits, timeout=60, message="the batch never reached the locked row")
    worker.proc.kill()  # SIGKILL: no cleanup; the batch's transaction is left open
    worker.proc.wait(timeout=10)
    lock.release()


def take_over(workers, kind: str, done) -> None:
    """As if the leases (minutes) had run out, with a new worker and the periodic sweep queued."""
    model = InboundEvent if kind == "inbound" else StatusEvent
    model.objects.update(claimed_until=timezone.now())
    workers()
    from messaging.tasks.receiving import requeue_inbound_events

    def settled() -> bool:
        requeue_inbound_events.delay()
        return done()

    servers.wait_until(settled, timeout=120, interval=1.0, message=f"the {kind} events were not processed")


def test_a_worker_killed_mid_batch_of_inbound_texts_loses_none_and_files_each_once(org_a, workers, locks):
    MembershipFactory(organization=org_a, role=Role.ADMIN, user__username="alice")
    MembershipFactory(organization=org_a, role=Role.AGENT, user__username="aaron")
    line = Line(org_a)
    waiting = store_inbound(line.number, "+12025550100", "earlier").conversation
    servers.wait_until(lambda: InboxStep.objects.filter(done_at__isnull=False).exists())  # filed after commit
    lock = locks(waiting._meta.db_table, waiting.pk)
    verified = VerifiedAccount(line.account.pk, org_a.pk, line.account.account_sid)
    customers = [f"+120255501{i % 30:02d}" for i in range(TEXTS)]  # the locked conversation's among them
    events = [ingest.inbound_event(verified, line.inbound(c, f"text {i}")) for i, c in enumerate(customers)]
    sids = [e.row[2] for e in events]
    worker = workers()
    ingest.store_events(events)  # wakes a drain on the worker
    kill_mid_batch(worker, lock)
    assert InboundEvent.objects.filter(message_sid__in=sids, attempts__gt=0).exists(), "no batch was claimed"
    assert not Message.objects.filter(sid__in=sids).exists(), "part of the batch committed"

    take_over(
        workers,
        "inbound",
        lambda: not InboundEvent.objects.filter(message_sid__in=sids, processed_at__isnull=True).exists(),
    )
    messages = Message.objects.filter(sid__in=sids)
    assert messages.count() == TEXTS and messages.values("sid").distinct().count() == TEXTS
    conversations = set(messages.values_list("conversation_id", flat=True))
    assert InboxStep.objects.filter(message__in=messages, done_at__isnull=False).count() == TEXTS
    # Nobody owns these conversations: both members are told of every text, once.
    unread = ConversationUserState.objects.filter(conversation_id__in=conversations).aggregate(
        n=Sum("unread_count")
    )["n"]
    notified = Notification.objects.filter(conversation_id__in=conversations).aggregate(n=Sum("count"))["n"]
    in_sessions = MessageSession.objects.filter(conversation_id__in=conversations).aggregate(
        n=Sum("message_count")
    )["n"]
    # ... and of the locked conversation's earlier text, filed before the batch.
    assert (unread, notified, in_sessions) == (2 * (TEXTS + 1), 2 * (TEXTS + 1), TEXTS + 1)


def test_a_worker_killed_mid_batch_of_status_callbacks_applies_each_once(org_a, workers, locks):
    line = Line(org_a)
    conversation = store_inbound(line.number, "+12025550100", "hello").conversation
    # Two callbacks per message, all in one batch: nothing of it may commit while one row is locked.
    count = ingest.STATUS_BATCH // 2
    messages = [
        Message.objects.create(
            organization=org_a,
            conversation=conversation,
            account=line.account,
            direction="outbound",
            source="api",
            status="queued",
            status_rank=20,
            sid=receive_helpers.new_sid(),
            from_number=line.number.phone_number,
            to_number=conversation.customer_number,
            body=f"reply {i}",
        )
        for i in range(count)
    ]
    lock = locks(Message._meta.db_table, messages[count // 2].pk)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    events = [
        ingest.Event("status", (org_a.pk, line.account.pk, m.pk, m.sid, status, None, now))
        for m in messages
        for status in ("sent", "delivered")
    ]
    worker = workers()
    ingest.store_events(events)
    kill_mid_batch(worker, lock)
    assert StatusEvent.objects.filter(attempts__gt=0).exists(), "no batch was claimed"
    assert set(Message.objects.filter(pk__in=[m.pk for m in messages]).values_list("status", flat=True)) == {
        "queued"
    }, "part of the batch committed"

    take_over(workers, "status", lambda: not StatusEvent.objects.exists())
    rows = Message.objects.filter(pk__in=[m.pk for m in messages])
    assert set(rows.values_list("status", flat=True)) == {"delivered"}
    assert (
        not rows.filter(sent_at__isnull=True).exists() and not rows.filter(delivered_at__isnull=True).exists()
    )
