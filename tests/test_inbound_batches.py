"""Stored webhooks processed a batch at a time (PostgreSQL): inbound texts become messages, filed in the inbox
in the same transaction, and status callbacks are applied, each with a pinned budget of queries per batch;
the result is the one the one-at-a-time path gives (a retried webhook is one message, statuses only move
forward, blocked numbers notify no one, every organization sees only its own)."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from django.db.models import Sum

from messaging.inbox import events as events_module
from messaging.models import (
    ConsentState,
    Conversation,
    ConversationUserState,
    InboundEvent,
    InboxStep,
    Message,
    MessageSession,
    Notification,
    StatusEvent,
)
from messaging.services.consent import do_change_consent
from messaging.twilio import ingest
from messaging.twilio.signatures import VerifiedAccount
from tenancy.models import Role
from tests import receive_helpers
from tests.factories import MembershipFactory
from tests.factories_messaging import store_inbound
from tests.markers import needs_postgres
from tests.receive_helpers import Line

pytestmark = [needs_postgres, pytest.mark.django_db]
_fresh_token_cache = receive_helpers._fresh_token_cache
sent_replies = receive_helpers.sent_replies


@pytest.fixture
def line(org_a):
    for i in range(3):
        MembershipFactory(
            organization=org_a, role=Role.ADMIN if i == 0 else Role.AGENT, user__username=f"agent{i}"
        )
    return Line(org_a)


@pytest.fixture
def published(monkeypatch):
    frames = []

    def record(event_type, payload, **kwargs):
        frames.append((event_type, payload, kwargs))

    monkeypatch.setattr("messaging.inbox.events.publish", record)
    monkeypatch.setattr("messaging.inbox.events.listened", lambda groups: set(groups))  # someone watches all
    return frames


def store_texts(line, customers, body="Is it still available?", sids=None):
    verified = VerifiedAccount(line.account.pk, line.org.pk, line.account.account_sid)
    events = []
    for i, customer in enumerate(customers):
        params = line.inbound(customer, f"{body} ({i})")
        if sids:
            params["MessageSid"] = params["SmsSid"] = sids[i]
        events.append(ingest.inbound_event(verified, params))
    ingest.store_events(events)
    return [e.row[2] for e in events]


def ledger(org):
    conversations = Conversation.objects.filter(organization=org)
    return {
        "messages": Message.objects.filter(organization=org).count(),
        "conversations": conversations.count(),
        "unread": ConversationUserState.objects.filter(conversation__in=conversations).aggregate(
            n=Sum("unread_count")
        )["n"],
        "notified": Notification.objects.filter(conversation__in=conversations).aggregate(n=Sum("count"))[
            "n"
        ],
        "notifications": Notification.objects.filter(conversation__in=conversations).count(),
        "session_messages": MessageSession.objects.filter(conversation__in=conversations).aggregate(
            n=Sum("message_count")
        )["n"],
        "steps_done": InboxStep.objects.filter(organization=org, done_at__isnull=False).count(),
        "pending": InboundEvent.objects.filter(organization=org, processed_at__isnull=True).count(),
    }


CUSTOMERS = [f"+1202555{i:04d}" for i in range(30)]


def test_a_batch_of_inbound_texts_costs_at_most_a_query_per_text_and_files_each_once(
    line, published, django_assert_max_num_queries
):
    n = ingest.INBOUND_BATCH
    customers = CUSTOMERS[: n // 2 + 1]
    # Half of the customers texted before (their conversations exist), the others are new; most text twice.
    for customer in customers[: len(customers) // 2]:
        store_inbound(line.number, customer, "earlier")
    before = ledger(line.org)
    store_texts(line, (customers + customers)[:n])  # one full batch
    with django_assert_max_num_queries(30):  # about 1 per text amortized (the budget: 6)
        assert ingest._inbound_batch() == (n, 0)
    after = ledger(line.org)
    assert after["messages"] - before["messages"] == n
    assert after["conversations"] == len(customers)
    assert after["pending"] == 0
    assert after["steps_done"] - before["steps_done"] == n
    # Nobody owns these conversations: every member may see them and is told of every text once.
    assert after["unread"] - (before["unread"] or 0) == n * 3
    assert after["notified"] - (before["notified"] or 0) == n * 3
    assert after["session_messages"] - (before["session_messages"] or 0) == n
    created = [p for t, p, _ in published if t == "message.created"]
    assert len(created) == n and len({p["message"]["id"] for p in created}) == n


def test_a_batch_files_texts_exactly_as_one_at_a_time_would(
    org_a, org_b, published, django_capture_on_commit_callbacks
):
    """The same texts through the batch (org A) and one by one (org B, the per-event path): same ledger."""
    lines = []
    for org in (org_a, org_b):
        for i in range(2):
            MembershipFactory(organization=org, role=Role.AGENT, user__username=f"{org.slug}{i}")
        lines.append(Line(org))
    a, b = lines
    owner = MembershipFactory(organization=org_a, role=Role.AGENT, user__username="owner-a").user
    owner_b = MembershipFactory(organization=org_b, role=Role.AGENT, user__username="owner-b").user
    for line, user in ((a, owner), (b, owner_b)):
        conversation = store_inbound(line.number, CUSTOMERS[0], "earlier").conversation
        Conversation.objects.filter(pk=conversation.pk).update(owner=user)  # idle owner: owner + everyone
    customers = CUSTOMERS[:5] * 3
    store_texts(a, customers)
    assert ingest._inbound_batch() == (15, 0)
    store_texts(b, customers)
    from messaging.services.receiving import process_inbound_event

    for event in InboundEvent.objects.filter(organization=org_b, processed_at__isnull=True).order_by("id"):
        # The per-event path files its text after commit (its inbox step).
        with django_capture_on_commit_callbacks(execute=True):
            process_inbound_event(event.pk)
    assert ledger(org_a) == ledger(org_b)
    kinds = lambda org: sorted(Notification.objects.filter(organization=org).values_list("kind", "count"))  # noqa: E731
    assert kinds(org_a) == kinds(org_b)


def test_a_retried_webhook_and_a_text_the_history_sync_stored_are_each_one_message(line):
    sids = store_texts(line, CUSTOMERS[:3])
    assert ingest._inbound_batch() == (3, 0)
    # Twilio retries the first (a new event row can only come from a webhook stored before the first was
    # processed: simulate it by forgetting the event), and the sync stored the second's SID already.
    InboundEvent.objects.filter(message_sid=sids[0]).delete()
    store_texts(line, CUSTOMERS[:1], sids=[sids[0]])
    assert ingest._inbound_batch() == (1, 0)
    assert Message.objects.filter(sid=sids[0]).count() == 1
    event = InboundEvent.objects.get(message_sid=sids[0])
    assert event.processed_at is not None and event.message_id == Message.objects.get(sid=sids[0]).pk
    assert ledger(line.org)["session_messages"] == 3


def test_a_blocked_numbers_texts_are_stored_and_notify_no_one_while_others_in_the_batch_do(line, published):
    do_change_consent(line.org, CUSTOMERS[1], "block", "agent")
    assert ConsentState.objects.get(phone_number=CUSTOMERS[1]).blocked
    store_texts(line, CUSTOMERS[:2])
    assert ingest._inbound_batch() == (2, 0)
    blocked = Conversation.objects.get(customer_number=CUSTOMERS[1])
    assert not Notification.objects.filter(conversation=blocked).exists()
    assert not ConversationUserState.objects.filter(conversation=blocked, unread_count__gt=0).exists()
    assert Notification.objects.filter(conversation__customer_number=CUSTOMERS[0]).count() == 3
    frames = [(t, kw) for t, p, kw in published if p.get("conversation_id") == blocked.pk]
    assert [t for t, _ in frames] == ["message.created"]
    assert frames[0][1]["user_ids"] == []  # the thread's open viewers only


def test_keywords_and_media_in_a_batch_go_one_by_one_in_their_place(line, published, sent_replies):
    verified = VerifiedAccount(line.account.pk, line.org.pk, line.account.account_sid)
    events = [
        ingest.inbound_event(verified, line.inbound(CUSTOMERS[0], "first")),
        ingest.inbound_event(verified, line.inbound(CUSTOMERS[0], "STOP")),
        ingest.inbound_event(verified, line.inbound(CUSTOMERS[0], "third")),
    ]
    ingest.store_events(events)
    assert ingest._inbound_batch() == (3, 0)
    bodies = list(
        Message.objects.filter(conversation__customer_number=CUSTOMERS[0])
        .order_by("created_at")
        .values_list("body", flat=True)
    )
    assert bodies == ["first", "STOP", "third"]
    assert ConsentState.objects.get(organization=line.org, phone_number=CUSTOMERS[0]).opted_out


def test_an_organization_never_files_a_text_in_another_organizations_conversation(org_a, org_b):
    a, b = Line(org_a), Line(org_b)
    store_inbound(b.number, CUSTOMERS[0], "org b's thread")
    store_texts(a, CUSTOMERS[:1])
    assert ingest._inbound_batch() == (1, 0)
    message = Message.objects.filter(organization=org_a).get()
    assert message.conversation.organization_id == org_a.pk
    assert Conversation.objects.filter(organization=org_b).get().messages.count() == 1


# --- status callbacks -------------------------------------------------------------------------------------


def outbound(line, n):
    from django.utils import timezone

    messages = []
    for i in range(n):
        conversation = store_inbound(line.number, CUSTOMERS[i % len(CUSTOMERS)], "hi").conversation
        message = Message.objects.create(
            organization=line.org,
            conversation=conversation,
            account=line.account,
            direction="outbound",
            source="api",
            status="queued",
            status_rank=20,
            sid=receive_helpers.new_sid(),
            from_number=line.number.phone_number,
            to_number=conversation.customer_number,
            body="Your visit is confirmed",
        )
        Conversation.objects.filter(pk=conversation.pk).update(last_message_at=message.created_at)
        messages.append(message)
    timezone.now()
    return messages


def store_statuses(line, pairs, *, by_sid=False):
    from django.db import connection
    from django.utils import timezone

    now = connection.ops.adapt_datetimefield_value(timezone.now())
    events = [
        ingest.Event(
            "status",
            (line.org.pk, line.account.pk, None if by_sid else m.pk, m.sid, status, code, now),
        )
        for m, status, code in pairs
    ]
    ingest.store_events(events)


def test_a_batch_of_status_callbacks_costs_a_constant_number_of_queries(
    line, published, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    n = ingest.STATUS_BATCH
    messages = outbound(line, n // 2)
    store_statuses(line, [(m, s, None) for m in messages for s in ("sent", "delivered")])  # one full batch
    # Its live events included (built after commit):
    with django_assert_max_num_queries(12), django_capture_on_commit_callbacks(execute=True):
        assert ingest._status_batch() == (n, 0)
    assert set(Message.objects.filter(pk__in=[m.pk for m in messages]).values_list("status", flat=True)) == {
        "delivered"
    }
    assert not StatusEvent.objects.exists()
    statuses = [(p["message_id"], p["status"]) for t, p, _ in published if t == "message.status"]
    assert len(statuses) == n and statuses.index((messages[0].pk, "sent")) < statuses.index(
        (messages[0].pk, "delivered")
    )
    assert set(
        Conversation.objects.filter(messages__in=messages).values_list("last_message_status", flat=True)
    ) == {"delivered"}


def test_statuses_in_a_batch_only_move_forward_and_keep_the_first_final_one(
    line, published, django_capture_on_commit_callbacks
):
    first, second, third = outbound(line, 3)
    store_statuses(
        line,
        [
            (first, "delivered", None),
            (first, "sent", None),  # late: changes nothing
            (second, "undelivered", 30003),
            (second, "delivered", None),  # a contradicting final status: the first final one stays
            (second, "undelivered", 30003),  # a repeat
            (third, "sent", None),
        ],
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert ingest._status_batch() == (6, 0)
    first.refresh_from_db(), second.refresh_from_db(), third.refresh_from_db()
    assert (first.status, first.sent_at is not None, first.delivered_at is not None) == (
        "delivered",
        True,
        True,
    )
    assert (second.status, second.error_code, second.failed_at is not None) == ("undelivered", 30003, True)
    assert second.error_message
    assert third.status == "sent" and third.sent_at is not None
    changes = [(p["message_id"], p["status"]) for t, p, _ in published if t == "message.status"]
    assert changes == [(first.pk, "delivered"), (second.pk, "undelivered"), (third.pk, "sent")]


def test_a_status_batch_builds_live_events_only_for_what_someone_watches(
    line, published, monkeypatch, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    watched, unwatched = outbound(line, 2)
    asked: list[set[str]] = []

    def only_the_watched_thread(groups):
        asked.append(set(groups))
        return {g for g in groups if g == f"conv.{watched.conversation_id}"}

    monkeypatch.setattr("messaging.inbox.events.listened", only_the_watched_thread)
    store_statuses(line, [(watched, "delivered", None), (unwatched, "delivered", None)])
    with django_capture_on_commit_callbacks(execute=True):
        assert ingest._status_batch() == (2, 0)
    assert f"conv.{unwatched.conversation_id}" in asked[0]  # asked about both threads
    events = [(t, p.get("message_id") or p["conversation"]["id"]) for t, p, _ in published]
    assert ("message.status", watched.pk) in events
    assert all(key != unwatched.pk and key != unwatched.conversation_id for _, key in events)
    # Nobody watching at all: one query (the threads' owners), no events built.
    published.clear()
    monkeypatch.setattr("messaging.inbox.events.listened", lambda groups: set())
    step = (
        unwatched.pk,
        unwatched.conversation_id,
        line.org.pk,
        unwatched.created_at,
        None,
        "read",
        None,
        "",
    )
    with django_assert_max_num_queries(1):
        events_module._publish_status_batch_now([step], {unwatched.conversation_id})
    assert published == []


def test_a_status_batch_finds_messages_by_sid_and_never_touches_another_organizations(
    org_a, org_b, monkeypatch
):
    a, b = Line(org_a), Line(org_b)
    (mine,) = outbound(a, 1)
    (theirs,) = outbound(b, 1)
    queued = []
    monkeypatch.setattr(ingest.queue, "enqueue", lambda name, *args: queued.append((name, args)))
    from django.test.utils import CaptureQueriesContext  # noqa: F401

    store_statuses(a, [(mine, "delivered", None), (theirs, "delivered", None)], by_sid=True)
    from django.db import connection, transaction

    with transaction.atomic():
        assert ingest._status_batch() == (2, 0)
        callbacks = list(connection.run_on_commit)
    mine.refresh_from_db(), theirs.refresh_from_db()
    assert mine.status == "delivered" and theirs.status == "queued"
    # Org B's SID under org A's account is a message org A never stored: fetched from Twilio, as before.
    assert len(callbacks) >= 1


def test_a_batch_that_fails_as_a_whole_is_processed_one_text_at_a_time(line, monkeypatch):
    from messaging.services import inbound_batch

    def deadlock(texts):
        raise OperationalError("deadlock detected")

    monkeypatch.setattr(inbound_batch, "_store_texts", deadlock)
    sids = store_texts(line, CUSTOMERS[:3])
    assert ingest._inbound_batch() == (3, 0)
    assert Message.objects.filter(sid__in=sids).count() == 3
    assert ledger(line.org)["pending"] == 0


@pytest.mark.django_db(
    transaction=True
)  # commits for real: the receivers queue as the batch announces itself
def test_a_batch_of_texts_queues_one_automations_task_and_one_campaigns_task_with_every_text(
    line, monkeypatch
):
    """The features that hear of inbound texts (automations, campaigns) get one task per batch carrying the
    batch's messages, not one task per text."""
    from quicksend import queue

    queued = []
    monkeypatch.setattr(queue, "enqueue", lambda name, *args, **kwargs: queued.append((name, args)))
    store_texts(line, CUSTOMERS[:6])
    assert ingest._inbound_batch() == (6, 0)
    ids = sorted(Message.objects.filter(organization=line.org).values_list("pk", flat=True))
    by_task = {name: args for name, args in queued if name.startswith("campaigns.tasks.")}
    assert sorted(by_task) == [
        "campaigns.tasks.campaign_inbound_texts",
        "campaigns.tasks.handle_inbound_texts",
    ]
    assert all(sorted(args[0]) == ids for args in by_task.values())
    assert len([name for name, _ in queued if name.startswith("campaigns.tasks.")]) == 2
