"""What one send may cost in queries (docs/benchmarks.md "Send cost"): the API request, the worker's send and
a campaign batch. Every statement counts (BEGIN, COMMIT and savepoints too). A change that adds a query to a
path fails here; a change that saves one should lower the budget."""

from __future__ import annotations

import pytest
from django.db import connection

from messaging.inbox import steps
from messaging.models import Message
from messaging.services import delivery
from messaging.services.bulk_sending import Recipient, send_many
from messaging.tasks.sending import file_waiting_outbound_task, hand_over_waiting_task, send_message_task
from tests import factories_send

line = factories_send.line
fast_rates = factories_send.fast_rates

URL = "/api/v1/messages"

# The request's statements (the inbox's bookkeeping of the new message is a worker's, below):
# token with membership (1); records with the number, consent, the sender (3); BEGIN, the new conversation
# with its preview (not read first: the sender choice saw the number has none with the customer; on
# PostgreSQL one INSERT … ON CONFLICT DO NOTHING, elsewhere in a savepoint: two more), the message, the inbox
# step's row, the audit row, COMMIT. (To a customer with a conversation: its read, the message, the
# preview's UPDATE.)
API_SEND_OWN = 10
# With what runs after its commit: queueing the hand-over (the id pushed to the hand-over drain's list) and
# waking that drain and the one that files API sends (Redis and the broker, no statement).
API_SEND_REQUEST = 10
# That drain (``messaging.inbox.outbound_batch.file_waiting``) files a burst of API sends with a constant
# number of statements on PostgreSQL: the lease (in its transaction), then in one transaction the claim,
# the messages, their sessions (3), the senders' read state (1) and their notifications (one UPDATE …
# RETURNING); and the empty lease at the end.
API_FILING_BURST = 14
# The worker: the message with its account, number and consent (1); the claim (1); the SID and status
# (BEGIN, UPDATE, the conversation's last status, COMMIT).
WORKER_SEND_OWN = 6
# With the inbox's news of the status after commit: the message with its conversation and number (1).
WORKER_SEND_TASK = 9
# The drain that hands single sends over (``messaging.services.hand_over.hand_over_waiting``), per batch
# whatever its size, on PostgreSQL: ``deliver_many``'s read (with consent) and claim (2), then in one
# transaction (BEGIN/COMMIT) the statuses with their SIDs and the conversations' last status (the store of
# HAND_OVER_STORE) and the inbox's news of them (the conversations, the watchers' read state, their unread
# counts: 3). (One ``send_message_task`` per send: WORKER_SEND_TASK each.)
HAND_OVER_BATCH = 9
# A batch's answers stored together on PostgreSQL (``status.apply_statuses``): BEGIN, one conditional UPDATE
# for the round, the SIDs, the conversations' last status, COMMIT, whatever the batch's size.
HAND_OVER_STORE = 5


@pytest.fixture
def api(token_client_for, alice, org_a):
    return token_client_for(alice, org_a)


@pytest.fixture
def no_task(monkeypatch):
    """Sends are queued for their hand-over (the list, the drain's flag) but no task runs."""
    monkeypatch.setattr(send_message_task, "delay", lambda *args, **kwargs: None)
    monkeypatch.setattr(hand_over_waiting_task, "delay", lambda *args, **kwargs: None)


@pytest.fixture
def on_workers(monkeypatch):
    """Tasks go to workers, as in production mode (embedded mode files an API send in its request)."""
    monkeypatch.setattr(file_waiting_outbound_task.app.conf, "task_always_eager", False)
    monkeypatch.setattr(file_waiting_outbound_task, "delay", lambda *args, **kwargs: None)


@pytest.fixture
def without_inbox_steps(monkeypatch):
    """The inbox's bookkeeping of each message replaced by nothing (its cost is the inbox's budget)."""
    monkeypatch.setitem(steps._handlers, "outbound", lambda *args, **kwargs: None)


def _savepoint() -> int:
    """Where there is no ``INSERT … ON CONFLICT``-first path, a new conversation's savepoint and release."""
    return 0 if connection.vendor == "postgresql" else 2


def _post(api, to: str):
    response = api.post(URL, {"to": to, "body": "Your table is ready"}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_an_api_send_costs_at_most_its_budget_of_queries(
    api, line, no_task, without_inbox_steps, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    _post(api, "+12065550100")  # the first request of a client reads what every later one reuses
    with (
        django_assert_max_num_queries(API_SEND_OWN + _savepoint()),
        django_capture_on_commit_callbacks(execute=True),
    ):
        _post(api, "+12065550101")


def test_an_api_send_with_what_follows_its_commit_stays_within_the_request_budget(
    api, line, no_task, on_workers, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _post(api, "+12065550100")
    with (
        django_assert_max_num_queries(API_SEND_REQUEST + _savepoint()),
        django_capture_on_commit_callbacks(execute=True),
    ):
        _post(api, "+12065550102")


@pytest.mark.parametrize("size", [3, 30])
def test_the_drain_files_a_burst_of_api_sends_with_a_constant_number_of_queries(
    api, line, no_task, on_workers, size, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    for i in range(size):
        with django_capture_on_commit_callbacks(execute=True):
            _post(api, f"+1206555{1000 + i}")
    # Elsewhere than PostgreSQL each message is filed by its single step (no upsert there: 19 statements).
    budget = API_FILING_BURST if connection.vendor == "postgresql" else 3 + 19 * size
    with django_assert_max_num_queries(budget), django_capture_on_commit_callbacks(execute=True):
        assert file_waiting_outbound_task.run() == {"messages": size, "done": size}


def test_a_worker_send_costs_at_most_its_budget_of_queries(
    api,
    line,
    no_task,
    twilio_sandbox,
    monkeypatch,
    django_assert_max_num_queries,
    django_capture_on_commit_callbacks,
):
    first, second = _post(api, "+12065550103"), _post(api, "+12065550104")
    assert delivery.deliver(first) == "sent"
    # With what runs after its commit: the inbox's news of the status (``handle_status``).
    with django_assert_max_num_queries(WORKER_SEND_TASK), django_capture_on_commit_callbacks(execute=True):
        assert delivery.deliver(second) == "sent"
    third = _post(api, "+12065550105")
    monkeypatch.setattr(delivery, "apply_status", _status_without_receivers(monkeypatch))
    with django_assert_max_num_queries(WORKER_SEND_OWN), django_capture_on_commit_callbacks(execute=True):
        assert delivery.deliver(third) == "sent"


def _status_without_receivers(monkeypatch):
    """``apply_status`` whose after-commit signal reaches no receiver (the inbox's ``handle_status``)."""
    from messaging import signals
    from messaging.services import status

    monkeypatch.setattr(signals.message_status_changed, "receivers", [])
    monkeypatch.setattr(signals.message_status_changed, "sender_receivers_cache", {})
    return status.apply_status


@pytest.mark.parametrize("size", [5, 40])
def test_a_batch_is_stored_with_a_constant_number_of_queries_plus_one_per_message(
    org_a, line, size, django_assert_max_num_queries, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr("quicksend.queue.enqueue", lambda *args, **kwargs: None)
    recipients = [
        Recipient(key=f"c1:{i}:1", to=f"+1206555{i:04d}", body="Open house today") for i in range(size)
    ]
    # Reads (existing keys, the records index, consent, the threads, their numbers, the default sender)
    # and BEGIN, stale keys, conversations (read, insert, read), messages, inbox steps, audit, COMMIT; the
    # conversation's preview is one UPDATE per message.
    # SQLite (embedded mode) splits a long bulk INSERT at its limit of bound variables.
    split = 0 if connection.vendor == "postgresql" else 2
    with django_capture_on_commit_callbacks(execute=True), django_assert_max_num_queries(15 + size + split):
        result = send_many(org_a, recipients, source=Message.Source.CAMPAIGN, source_label="Open house")
    assert len(result.queued) == size and not result.refused


def test_a_batch_is_handed_over_with_two_queries_plus_the_status_of_each_message(
    org_a, line, twilio_sandbox, django_assert_max_num_queries, monkeypatch
):
    monkeypatch.setattr("quicksend.queue.enqueue", lambda *args, **kwargs: None)
    recipients = [Recipient(key=f"c2:{i}:1", to=f"+1206556{i:04d}", body="Reminder") for i in range(20)]
    result = send_many(org_a, recipients, source=Message.Source.CAMPAIGN, queue_delivery=False)
    monkeypatch.setattr(delivery, "apply_status", _status_without_receivers(monkeypatch))
    # One read (with consent) and one claim for the batch; then the answers: on PostgreSQL stored together
    # (``apply_statuses``: a constant number of statements), elsewhere each SID and status (4 statements).
    together = connection.vendor == "postgresql"
    with django_assert_max_num_queries(2 + HAND_OVER_STORE if together else 2 + 4 * 20):
        outcomes = delivery.deliver_many([m.pk for m in result.queued])
    assert set(outcomes.values()) == {"sent"}
    stored = Message.objects.filter(pk__in=[m.pk for m in result.queued])
    assert all(m.sid and m.status == "queued" for m in stored), "every answer is stored with its SID"


@pytest.mark.parametrize("size", [3, 30])
def test_the_drain_hands_a_burst_of_single_sends_to_twilio_with_a_constant_number_of_queries(
    api, line, twilio_sandbox, no_task, on_workers, size, django_assert_max_num_queries,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    for i in range(size):
        with django_capture_on_commit_callbacks(execute=True):
            _post(api, f"+1206557{1000 + i}")
    # Elsewhere than PostgreSQL each answer is stored by itself (``apply_status``, 4 statements, and the
    # inbox's news of it after commit).
    budget = HAND_OVER_BATCH if connection.vendor == "postgresql" else 2 + 7 * size
    with django_assert_max_num_queries(budget), django_capture_on_commit_callbacks(execute=True):
        assert hand_over_waiting_task.run() == {"batches": 1, "sent": size}
