"""No failure in processing is silent: a poisoned webhook is stored (cleaned) and never decides its batch
neighbours' answers; the inbox step of an inbound text is durable (retried until done, counted once); a live
event that cannot be delivered never undoes the bookkeeping; what still fails shows on /healthz and in the
admin, whose "Retry now" does it; an automatic number sync retried by its event writes no audit row twice."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from messaging.inbox import state as inbox_state
from messaging.inbox import steps
from messaging.models import (
    ConversationUserState,
    InboundEvent,
    InboxStep,
    Message,
    MessageSession,
    Notification,
    StatusEvent,
)
from messaging.services.receiving import process_inbound_event
from messaging.twilio import ingest, webhook_asgi
from messaging.twilio.public_urls import INCOMING_SMS_PATH, STATUS_CALLBACK_PATH
from quicksend import realtime
from tenancy.models import AuditLog
from tests import receive_helpers
from tests.factories import UserFactory
from tests.factories_messaging import PhoneNumberFactory, TwilioAccountFactory, store_inbound, store_outbound
from tests.markers import needs_production_mode
from tests.receive_helpers import Line, post_inbound
from tests.test_webhook_fastpath import Fallback, call, call_async, signed

_fresh_token_cache = receive_helpers._fresh_token_cache
eager_tasks = receive_helpers.eager_tasks
CUSTOMER = "+12025550171"


@pytest.fixture(autouse=True)
def _writer_closed():
    yield
    webhook_asgi.shutdown()


@pytest.fixture(autouse=True)
def _layer_breaker_reset(monkeypatch):
    """A failed live event opens the publisher's breaker for a moment: no test inherits another's."""
    monkeypatch.setattr(realtime, "_broken_until", 0.0)


@pytest.fixture
def number(org_a):
    return PhoneNumberFactory(account=TwilioAccountFactory(organization=org_a))


@pytest.fixture
def inbound(django_capture_on_commit_callbacks):
    def send(number, customer=CUSTOMER, body="Hello"):
        with django_capture_on_commit_callbacks(execute=True):
            return store_inbound(number, customer, body)

    return send


def _bookkeeping(message: Message) -> dict:
    return {
        "unread": sum(
            ConversationUserState.objects.filter(conversation_id=message.conversation_id).values_list(
                "unread_count", flat=True
            )
        ),
        "notifications": Notification.objects.filter(conversation_id=message.conversation_id).count(),
        "session_messages": sum(
            MessageSession.objects.filter(conversation_id=message.conversation_id).values_list(
                "message_count", flat=True
            )
        ),
    }


def _due_now():
    """As if every step's backoff had passed."""
    InboxStep.objects.filter(done_at__isnull=True).update(run_after=timezone.now() - timedelta(seconds=1))


# --- Poisoned webhooks ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_poisoned_webhook_is_stored_cleaned_and_its_batch_neighbours_of_two_orgs_are_answered_200(
    org_a, org_b, eager_tasks
):
    from tests.test_webhooks_status import outbound

    acme, globex = Line(org_a), Line(org_b)
    message = outbound(acme)
    poisoned = acme.inbound(CUSTOMER, "poison\x00", FromCity="NUL\x00CITY")
    good = [acme.inbound(f"+1202555{2000 + i}", f"acme {i}") for i in range(3)]
    good += [globex.inbound(f"+1202555{3000 + i}", f"globex {i}") for i in range(3)]
    status_params = {"MessageSid": message.sid, "MessageStatus": "sent\x00", "AccountSid": acme.sid}
    query = f"m={message.pk}"
    requests_ = [(INCOMING_SMS_PATH, *signed(acme, INCOMING_SMS_PATH, poisoned), "")]
    requests_ += [
        (
            INCOMING_SMS_PATH,
            *signed(acme if p["AccountSid"] == acme.sid else globex, INCOMING_SMS_PATH, p),
            "",
        )
        for p in good
    ]
    requests_.append((STATUS_CALLBACK_PATH, *signed(acme, STATUS_CALLBACK_PATH, status_params, query), query))
    app = webhook_asgi.with_webhooks(Fallback())

    async def all_at_once():
        return await asyncio.gather(
            *(call_async(app, path, body, headers, "POST", q) for path, body, headers, q in requests_)
        )

    statuses = [status for status, _, _ in asyncio.run(all_at_once())]
    assert statuses == [200] * len(requests_)
    stored = {m.sid: m for m in Message.objects.filter(direction="inbound")}
    assert set(stored) == {p["MessageSid"] for p in [poisoned, *good]}
    assert stored[poisoned["MessageSid"]].body == "poison"
    event = InboundEvent.objects.get(message_sid=poisoned["MessageSid"])
    assert event.payload["Body"] == "poison" and event.payload["FromCity"] == "NULCITY"
    assert "Body=poison%00" in event.raw_form and "FromCity=NUL%00CITY" in event.raw_form
    assert InboundEvent.objects.get(message_sid=good[0]["MessageSid"]).raw_form == ""
    assert {m.organization_id for m in stored.values()} == {org_a.pk, org_b.pk}
    message.refresh_from_db()
    assert message.status == "sent"


@pytest.mark.django_db(transaction=True)
def test_a_row_the_database_refuses_is_refused_alone_and_its_neighbours_are_stored(org_a, org_b):
    acme, globex = Line(org_a), Line(org_b)
    account = ingest.VerifiedAccount(acme.account.pk, org_a.pk, acme.sid)
    other = ingest.VerifiedAccount(globex.account.pk, org_b.pk, globex.sid)
    good = [
        ingest.inbound_event(account, acme.inbound(CUSTOMER, "a")),
        ingest.inbound_event(other, globex.inbound(CUSTOMER, "b")),
    ]
    # A row no database takes: its MessageSid is longer than the column (the checks before never let one
    # through; this stands for any row-level refusal).
    bad_form = acme.inbound(CUSTOMER, "c")
    bad = ingest.inbound_event(account, bad_form)
    bad.row = (*bad.row[:2], "SM" + "0" * 40, *bad.row[3:])
    answers = ingest.store_events([good[0], bad, good[1]])
    if connection.vendor == "sqlite":  # SQLite does not enforce a column's length: all three are stored
        assert answers == [ingest.OK] * 3
    else:
        assert answers == [ingest.OK, ingest.UNAVAILABLE, ingest.OK]
    assert InboundEvent.objects.filter(organization=org_b).count() == 1
    assert InboundEvent.objects.filter(organization=org_a, message_sid=good[0].row[2]).exists()


# --- Waking the drain is best effort ----------------------------------------------------------------------


@needs_production_mode
@pytest.mark.django_db(transaction=True)
def test_a_stored_webhook_is_answered_200_at_once_while_redis_refuses_and_the_sweep_drains_it(
    org_a, client, settings, monkeypatch
):
    from quicksend.celery import app

    line = Line(org_a)
    monkeypatch.setattr(app.conf, "task_always_eager", False)
    monkeypatch.setattr(ingest, "_redis", None)
    monkeypatch.setattr(ingest, "_wake_connection", None)
    monkeypatch.setitem(settings.CACHES["default"], "LOCATION", "redis://127.0.0.1:1/7")  # refuses
    params = line.inbound(CUSTOMER, "still there?")
    assert post_inbound(client, line.token, params).status_code == 200  # the Django view
    fast = line.inbound(CUSTOMER, "and now?")
    status, _, _ = call(
        webhook_asgi.with_webhooks(Fallback()), INCOMING_SMS_PATH, *signed(line, INCOMING_SMS_PATH, fast)
    )
    assert status == 200  # the fast path
    assert InboundEvent.objects.filter(processed_at__isnull=True).count() == 2
    queued = []
    monkeypatch.setattr(ingest, "schedule_drain", queued.append)
    assert ingest.sweep() == {"inbound": True, "status": False}
    assert queued == ["inbound"]


# --- Pooled connections the server closed ----------------------------------------------------------------


@needs_production_mode
@pytest.mark.faults
@pytest.mark.django_db(transaction=True)
def test_the_webhook_writer_survives_its_connection_being_terminated_by_the_server(
    org_a, eager_tasks, fresh_connections_after
):
    line = Line(org_a)
    app = webhook_asgi.with_webhooks(Fallback())
    first = line.inbound(CUSTOMER, "one")
    assert call(app, INCOMING_SMS_PATH, *signed(line, INCOMING_SMS_PATH, first))[0] == 200
    with connection.cursor() as cursor:  # what an administrator, a restart or a failover does
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] >= 1  # the writer's kept connection at least
    second = line.inbound(CUSTOMER, "two")
    assert call(app, INCOMING_SMS_PATH, *signed(line, INCOMING_SMS_PATH, second))[0] == 200
    assert Message.objects.filter(sid=second["MessageSid"]).exists()


@pytest.mark.django_db(transaction=True)
def test_the_writer_tries_a_batch_again_only_when_its_connection_failed_at_once(org_a, monkeypatch):
    line = Line(org_a)
    calls = []

    def broken(requests):
        calls.append(len(requests))
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(webhook_asgi, "_write_once", broken)
    app = webhook_asgi.with_webhooks(Fallback())
    form = line.inbound(CUSTOMER, "hi")
    assert call(app, INCOMING_SMS_PATH, *signed(line, INCOMING_SMS_PATH, form))[0] == 503
    assert calls == [1, 1]  # failed at once: one more try on a fresh connection
    calls.clear()
    monkeypatch.setattr(webhook_asgi, "RETRY_WITHIN_SECONDS", -1.0)  # as if it took long to fail
    assert call(app, INCOMING_SMS_PATH, *signed(line, INCOMING_SMS_PATH, form))[0] == 503
    assert calls == [1]  # a database that is down: no second wait


# --- The inbox step ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_live_event_that_cannot_be_delivered_never_undoes_the_inbox_bookkeeping(
    number, alice, inbound, settings
):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},  # nothing listens: refused
        }
    }
    before = realtime.delivery_failures()["count"]
    message = inbound(number)
    assert InboxStep.objects.get(message=message).done_at is not None
    assert _bookkeeping(message) == {"unread": 1, "notifications": 1, "session_messages": 1}
    assert realtime.delivery_failures()["count"] > before


@pytest.mark.django_db
def test_an_inbox_step_that_fails_is_retried_until_done_and_counts_once(number, alice, inbound, monkeypatch):
    real = inbox_state.attach_to_session
    tries = []

    def blinking(*args, **kwargs):
        tries.append(1)
        if len(tries) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(*args, **kwargs)

    monkeypatch.setattr("messaging.inbox.actions.attach_to_session", blinking)
    message = inbound(number)  # stored; its first step fails
    step = InboxStep.objects.get(message=message)
    assert (step.done_at, step.attempts) == (None, 1) and "server closed" in step.error
    assert step.run_after > timezone.now()  # backoff
    assert _bookkeeping(message) == {"unread": 0, "notifications": 0, "session_messages": 0}
    assert steps.retry_due() == {"tried": 0, "done": 0, "failed": 0}  # not due yet
    _due_now()
    assert steps.retry_due() == {"tried": 1, "done": 1, "failed": 0}
    assert _bookkeeping(message) == {"unread": 1, "notifications": 1, "session_messages": 1}
    # Tried again (a redelivered task, an admin's retry): nothing counts twice.
    assert steps.run_step(message.pk) is False
    InboxStep.objects.filter(message=message).update(done_at=None, run_after=None)
    InboxStep.objects.filter(message=message).update(done_at=timezone.now())
    assert steps.retry_due()["tried"] == 0
    assert _bookkeeping(message) == {"unread": 1, "notifications": 1, "session_messages": 1}


@pytest.mark.django_db
def test_an_outbound_messages_inbox_step_that_fails_is_retried_until_done_once(
    number, alice, inbound, monkeypatch, django_capture_on_commit_callbacks
):
    text = inbound(number)
    real = inbox_state.count_in_session
    tries = []

    def blinking(*args, **kwargs):
        tries.append(1)
        if len(tries) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(*args, **kwargs)

    monkeypatch.setattr("messaging.inbox.actions.count_in_session", blinking)
    with django_capture_on_commit_callbacks(execute=True):
        reply = store_outbound(text.conversation, alice, "On my way")
    step = InboxStep.objects.get(message=reply)
    assert step.outbound and (step.done_at, step.attempts) == (None, 1)
    assert _bookkeeping(text) == {"unread": 1, "notifications": 1, "session_messages": 1}
    _due_now()
    assert steps.retry_due() == {"tried": 1, "done": 1, "failed": 0}
    # The reply is in the session and it read the thread for its sender; once.
    assert _bookkeeping(text) == {"unread": 0, "notifications": 1, "session_messages": 2}
    assert steps.run_step(reply.pk, outbound=True) is False
    assert _bookkeeping(text)["session_messages"] == 2


@pytest.mark.django_db
def test_a_step_that_keeps_failing_shows_on_healthz_and_in_the_admin_whose_retry_now_does_it(
    number, alice, inbound, monkeypatch, client, org_b
):
    def broken(*args, **kwargs):
        raise OverflowError("date value out of range")

    monkeypatch.setattr("messaging.inbox.actions.attach_to_session", broken)
    message = inbound(number)
    for _ in range(steps.MAX_ATTEMPTS - 1):
        _due_now()
        steps.retry_due()
    step = InboxStep.objects.get(message=message)
    assert step.attempts == steps.MAX_ATTEMPTS and step.failed_at is not None
    _due_now()
    assert steps.retry_due()["tried"] == 0  # given up: only an admin retries it now
    processing = client.get("/healthz").json()["processing"]
    assert processing["failed"] == 1 and processing["inbox_steps_failed"] == 1

    root = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(root)
    page = client.get("/admin/messaging/inboxstep/?state=failed").content.decode()
    assert "OverflowError: date value out of range" in page and str(message.pk) in page
    monkeypatch.undo()
    answer = client.post(
        "/admin/messaging/inboxstep/",
        {"action": "retry_now", "_selected_action": [step.pk]},
        follow=True,
    )
    assert "1 of 1 step(s) done" in answer.content.decode()
    assert _bookkeeping(message) == {"unread": 1, "notifications": 1, "session_messages": 1}
    assert client.get("/healthz").json()["processing"]["failed"] == 0


@pytest.mark.django_db
def test_a_staff_member_of_another_organization_does_not_see_the_failed_steps(
    number, alice, inbound, org_b, client
):
    from django.contrib.auth.models import Permission

    from tests.factories import MembershipFactory

    message = inbound(number)
    InboxStep.objects.filter(message=message).update(done_at=None, failed_at=timezone.now(), error="boom")
    outsider = MembershipFactory(organization=org_b, user__username="support-b").user
    outsider.is_staff = True
    outsider.save()
    outsider.user_permissions.set(Permission.objects.filter(codename="view_inboxstep"))
    client.force_login(outsider)
    page = client.get("/admin/messaging/inboxstep/")
    assert page.status_code == 200 and "boom" not in page.content.decode()


@pytest.mark.django_db
def test_healthz_counts_inbound_events_that_ran_out_of_tries(org_a, client):
    line = Line(org_a)
    account = ingest.VerifiedAccount(line.account.pk, org_a.pk, line.sid)
    ingest.store_events([ingest.inbound_event(account, line.inbound(CUSTOMER, "x"))])
    InboundEvent.objects.update(attempts=ingest.MAX_ATTEMPTS, error="+15005550000 is not one of ours")
    StatusEvent.objects.create(
        organization=org_a,
        account=line.account,
        message_sid="SM" + "1" * 32,
        status="sent",
        received_at=timezone.now(),
        attempts=ingest.MAX_ATTEMPTS,
    )
    processing = client.get("/healthz").json()["processing"]
    assert processing["inbound_events_failed"] == 1 and processing["status_events_failed"] == 1
    assert processing["failed"] == 2


@pytest.mark.django_db
def test_an_admins_retry_now_puts_a_failed_inbound_event_back_and_it_is_processed(org_a, client, eager_tasks):
    line = Line(org_a)
    account = ingest.VerifiedAccount(line.account.pk, org_a.pk, line.sid)
    form = line.inbound(CUSTOMER, "are you open?")
    ingest.store_events([ingest.inbound_event(account, form)])  # processed at once (eager): undo that
    Message.objects.all().delete()
    InboundEvent.objects.update(processed_at=None, attempts=ingest.MAX_ATTEMPTS, error="OperationalError: …")
    event = InboundEvent.objects.get()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert "OperationalError" in client.get("/admin/messaging/inboundevent/?state=failed").content.decode()
    answer = client.post(
        "/admin/messaging/inboundevent/", {"action": "retry_now", "_selected_action": [event.pk]}, follow=True
    )
    assert "1 event(s) will be processed again" in answer.content.decode()
    event.refresh_from_db()
    assert event.processed_at is not None and event.error == ""
    assert Message.objects.filter(sid=form["MessageSid"]).exists()


# --- Audit rows of retried work ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_inbound_text_to_an_unknown_number_retried_writes_no_audit_row_per_try(org_a, twilio_sandbox):
    sid, token = twilio_sandbox.new_account()
    account = TwilioAccountFactory(organization=org_a, account_sid=sid, auth_token=token)
    form = receive_helpers.inbound_params(sid, CUSTOMER, "+12065550999", "hello?")
    event = InboundEvent.objects.create(
        organization=org_a,
        account=account,
        message_sid=form["MessageSid"],
        payload=form,
        received_at=timezone.now(),
    )
    for _ in range(3):  # the drain's retries of the event
        assert process_inbound_event(event.pk) is None
    assert "not one of this organization's numbers" in InboundEvent.objects.get(pk=event.pk).error
    assert AuditLog.objects.filter(action="twilio_account.numbers_refreshed").count() == 0


@pytest.mark.django_db
def test_credentials_refused_on_every_retry_are_audited_and_announced_once(
    org_a, django_capture_on_commit_callbacks
):
    from messaging.services.delivery import notify_account_invalid
    from messaging.signals import twilio_account_invalidated
    from messaging.twilio.errors import TwilioError

    account = TwilioAccountFactory(organization=org_a)
    heard = []
    twilio_account_invalidated.connect(lambda **kw: heard.append(kw), weak=False, dispatch_uid="once")
    try:
        for _ in range(3):  # a task retried after Twilio answered 20003 each time
            with django_capture_on_commit_callbacks(execute=True):
                notify_account_invalid(
                    account, TwilioError("Authentication failed.", code=20003, kind="auth")
                )
    finally:
        twilio_account_invalidated.disconnect(dispatch_uid="once")
    assert AuditLog.objects.filter(action="twilio_account.invalidated").count() == 1
    assert len(heard) == 1
    account.refresh_from_db()
    assert account.status == "invalid"


def test_the_step_backoff_doubles_up_to_ten_minutes():
    assert [steps.backoff_seconds(n) for n in range(1, 10)] == [5, 10, 20, 40, 80, 160, 320, 600, 600]
    assert json.dumps(steps.MAX_ATTEMPTS)  # a plain number, shown in the docs


@pytest.mark.django_db
def test_an_event_that_fails_is_tried_again_after_a_short_backoff_not_its_whole_lease(org_a, monkeypatch):
    """A drain whose event fails (a deadlock, a lock timeout) gives it back after 5 s, then 10 s, 20 s … (at
    most its lease), with the reason recorded, so a blip costs seconds, not the lease's two minutes."""
    line = Line(org_a)
    form = line.inbound(CUSTOMER, "is the house still for sale?")
    event = InboundEvent.objects.create(
        organization=org_a,
        account=line.account,
        message_sid=form["MessageSid"],
        payload=form,
        received_at=timezone.now(),
    )
    monkeypatch.setattr(
        ingest,
        "_process_inbound",
        lambda event_id: (_ for _ in ()).throw(OperationalError("deadlock detected")),
    )
    waits = []
    for tries in range(1, 4):
        InboundEvent.objects.filter(pk=event.pk).update(claimed_until=None, attempts=tries)  # as a claim does
        started = timezone.now()
        assert ingest._each("inbound", [event.pk], ingest._process_inbound) == (0, 1)
        event.refresh_from_db()
        waits.append(round((event.claimed_until - started).total_seconds()))
    assert waits == [5, 10, 20]
    assert event.error == "OperationalError: deadlock detected"
    assert [ingest.retry_delay(n) for n in (1, 5, 6, 9)] == [5, 80, 120, 120]
