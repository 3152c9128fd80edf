"""A Celery worker killed in the middle of handing single sends to Twilio (production mode, real worker
processes): the drain had taken the ids from the list, claimed every message of its batch and had some of
them in flight at Twilio when it died. Nothing is lost — the sweep queues the claimed ones again and a new
worker reconciles them with Twilio before sending — and nothing is sent twice.

The drain is caught mid-batch deterministically: the sandbox parks every REST request (``hold_requests``)
and answers 429 once the batch's requests fill its concurrency limit; the worker is killed (SIGKILL) then."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.models import Message
from messaging.services import hand_over
from messaging.services.sending import do_send_message
from quicksend import queue
from tenancy.models import Membership
from tests import factories_send
from tests.markers import needs_production_mode
from tests.plugins import servers
from tests.plugins.servers import wait_until

pytestmark = [needs_production_mode, pytest.mark.django_db(transaction=True), pytest.mark.faults]
line = factories_send.line
fast_rates = factories_send.fast_rates

IN_FLIGHT = 8  # QUICKSEND_SEND_CONCURRENCY: the Twilio requests a batch has in flight at once
SENDS = 20
A_MINUTE_AGO = timedelta(seconds=hand_over.STRANDED_SECONDS + 60)


@pytest.fixture
def workers(tmp_path, twilio_sandbox):
    env = {
        "TWILIO_API_BASE_URL": twilio_sandbox.base_url,
        "QUICKSEND_SEND_RATES": json.dumps(factories_send.FAST_RATES),
        "QUICKSEND_SEND_CONCURRENCY": str(IN_FLIGHT),
        "TWILIO_HTTP_TIMEOUT": "120",  # the parked requests wait for the kill, not for a timeout
        "DJANGO_SETTINGS_MODULE": "quicksend.settings",
    }

    with servers.celery_workers(tmp_path, env) as start:
        yield start


def _send(org, user, i: int, monkeypatch=None) -> int:
    membership = Membership.objects.get(organization=org, user=user)
    kwargs = {"to": f"+120655512{i:02d}", "body": f"Once only {i}"}
    if monkeypatch is None:
        return do_send_message(org, actor=user, membership=membership, source="api", **kwargs).pk
    with monkeypatch.context() as patch:
        patch.setattr(hand_over, "queue_hand_over", lambda *args, **kwargs: None)
        return do_send_message(org, actor=user, membership=membership, source="api", **kwargs).pk


def test_a_worker_killed_mid_hand_over_loses_no_send_and_sends_none_twice(
    org_a, alice, line, twilio_sandbox, workers, monkeypatch
):
    # One slot more than the batch's requests: the probe below may be parked too without turning one of the
    # batch's requests away.
    twilio_sandbox.behaviour(line.sid, hold_requests=True, concurrency_limit=IN_FLIGHT + 1)
    ids = [_send(org_a, alice, i, monkeypatch) for i in range(SENDS)]
    worker = workers()
    # The burst reaches the list together: one drain takes the whole batch and claims it before Twilio.
    queue.push_and_wake(hand_over.HAND_OVER_TASK, hand_over.HAND_OVER_FLAG, hand_over.HAND_OVER_LIST, ids)
    claimed = Message.objects.filter(pk__in=ids, handed_over_at__isnull=False, sid__isnull=True)
    wait_until(lambda: claimed.count() == SENDS, timeout=60, message="the batch was not claimed")
    wait_until(
        lambda: factories_send.account_is_busy(twilio_sandbox, line),
        timeout=60,
        message="the batch's requests never reached Twilio",
    )
    worker.proc.kill()  # SIGKILL: the batch's claims are committed, its answers never stored
    worker.proc.wait(timeout=10)
    assert not Message.objects.filter(pk__in=ids, sid__isnull=False).exists(), "no answer was stored"
    assert queue.list_items(hand_over.HAND_OVER_LIST) == [], "the dead drain had taken every id"
    # Sends stored while no worker runs wait in the list (the dead drain's flag still stands).
    later = [_send(org_a, alice, SENDS + i) for i in range(3)]

    # Twilio lets the parked requests go (it may or may not keep them: their client is gone), and finishes.
    twilio_sandbox.behaviour(line.sid, hold_requests=False, concurrency_limit=1)
    wait_until(lambda: not factories_send.account_is_busy(twilio_sandbox, line), timeout=30)
    twilio_sandbox.behaviour(line.sid, concurrency_limit=100)
    # A minute later (the claims' in-flight grace and the dead drain's flag have run out) a new worker runs,
    # and the sweep finds the claimed sends.
    long_ago = timezone.now() - A_MINUTE_AGO
    Message.objects.filter(pk__in=ids).update(created_at=long_ago, handed_over_at=long_ago)
    Message.objects.filter(pk__in=later).update(created_at=long_ago)
    kept = {m["sid"] for m in twilio_sandbox.messages(line.sid)}  # Twilio took these: to be reconciled
    assert kept, "the parked requests were taken once let go"
    queue.drain_started(hand_over.HAND_OVER_FLAG)
    workers()
    assert hand_over.requeue_stranded() == {"requeued": SENDS}
    everyone = ids + later
    wait_until(
        lambda: not Message.objects.filter(pk__in=everyone, sid__isnull=True).exists(),
        timeout=90,
        message="not every send reached Twilio",
    )
    at_twilio = [m["sid"] for m in twilio_sandbox.messages(line.sid)]
    ours = list(Message.objects.filter(pk__in=everyone).values_list("sid", flat=True))
    assert sorted(at_twilio) == sorted(ours) and len(set(ours)) == SENDS + 3, "each once, none lost"
    assert not Message.objects.filter(pk__in=everyone, status="failed").exists()
    # What Twilio kept was adopted (claimed once, never sent again); the rest was sent by the new worker.
    reconciled = Message.objects.filter(pk__in=ids, sid__in=kept)
    assert reconciled.count() == len(kept) and {m.send_attempts for m in reconciled} <= {1}
