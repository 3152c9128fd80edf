"""Faults in production mode, with real processes: the app under uvicorn and a Celery worker, both talking to
Redis through a proxy this test controls (so only they see the fault; the real Redis is never touched), the
real PostgreSQL. Texts from two organizations; for each scenario the ledger counts, per text: acknowledged
(200), stored (its InboundEvent), processed (its Message), its inbox step done, and the inbox's bookkeeping
(unread count, notification count, session messages). Nothing may be lost (every count reaches the number of
texts) and nothing doubled (no count passes it).

The periodic jobs (the drain sweep, the inbox step retries) are queued by the test every second, as beat
would every 30-60 s; leases that would run out after minutes are expired by the test when a worker was
killed."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests
from django.conf import settings
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
)
from messaging.twilio.public_urls import INCOMING_SMS_PATH
from tenancy.models import Role
from tests import receive_helpers
from tests.factories import MembershipFactory
from tests.markers import needs_production_mode
from tests.plugins import servers
from tests.plugins.tcp_proxy import TcpProxy
from tests.receive_helpers import Line, sign

pytestmark = [needs_production_mode, pytest.mark.django_db(transaction=True), pytest.mark.faults]
_fresh_token_cache = receive_helpers._fresh_token_cache

# Every answer must come well inside Twilio's 15 s, even with Redis down or hanging.
ANSWER_DEADLINE_SECONDS = 2.0


class World:
    """Two organizations (an admin each, so every first text notifies one person), the app and a worker
    reaching Redis through ``proxy``."""

    def __init__(self, tmp_path, org_a, org_b):
        MembershipFactory(organization=org_a, role=Role.ADMIN, user__username="alice")
        MembershipFactory(organization=org_b, role=Role.ADMIN, user__username="bob")
        self.lines = [Line(org_a), Line(org_b)]
        self.tmp_path = tmp_path
        redis = urlsplit(settings.CACHES["default"]["LOCATION"])
        self.proxy = TcpProxy((redis.hostname or "127.0.0.1", redis.port or 6379))
        self.redis_env = {"REDIS_URL": f"redis://127.0.0.1:{self.proxy.port}{redis.path or '/0'}"}
        self.server = servers.start_asgi_server(tmp_path, extra_env=self.redis_env)
        self.workers = [self.start_worker()]
        self.sent: list[tuple[str, int, float]] = []  # (MessageSid, status, seconds)
        self._customers = iter(range(10_000))

    def start_worker(self):
        n = len(getattr(self, "workers", []))
        return servers.start_celery_worker(self.tmp_path / f"celery-{n}.log", self.redis_env)

    def text(self, i: int) -> tuple[str, int, float]:
        """One customer's first text to one of the two organizations, as Twilio posts it."""
        line = self.lines[i % 2]
        params = line.inbound(f"+1303555{next(self._customers):04d}", f"text {i}")
        url = self.server.base_url + INCOMING_SMS_PATH
        started = time.monotonic()
        answer = requests.post(
            url, data=params, headers={"X-Twilio-Signature": sign(line.token, url, params)}, timeout=20
        )
        result = (params["MessageSid"], answer.status_code, time.monotonic() - started)
        self.sent.append(result)
        return result

    def burst(self, n: int) -> list[tuple[str, int, float]]:
        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(self.text, range(n)))

    def tick(self) -> None:
        """The periodic jobs, queued as beat does (through the real Redis: the test process is not behind
        the proxy)."""
        from messaging.inbox.tasks import retry_inbox_steps
        from messaging.tasks.receiving import requeue_inbound_events

        requeue_inbound_events.delay()
        retry_inbox_steps.delay()

    def ledger(self) -> dict[str, int]:
        sids = [sid for sid, _, _ in self.sent]
        messages = Message.objects.filter(sid__in=sids)
        conversations = messages.values("conversation_id")
        return {
            "acknowledged": sum(status == 200 for _, status, _ in self.sent),
            "stored": InboundEvent.objects.filter(message_sid__in=sids).count(),
            "processed": InboundEvent.objects.filter(
                message_sid__in=sids, processed_at__isnull=False
            ).count(),
            "messages": messages.count(),
            "inbox_steps_done": InboxStep.objects.filter(
                message__sid__in=sids, done_at__isnull=False
            ).count(),
            "unread": ConversationUserState.objects.filter(conversation_id__in=conversations).aggregate(
                n=Sum("unread_count")
            )["n"]
            or 0,
            "notified": Notification.objects.filter(conversation_id__in=conversations).aggregate(
                n=Sum("count")
            )["n"]
            or 0,
            "session_messages": MessageSession.objects.filter(conversation_id__in=conversations).aggregate(
                n=Sum("message_count")
            )["n"]
            or 0,
        }

    def settle(self, timeout: float = 60.0) -> dict[str, int]:
        """Wait until every text is fully processed (ticking the periodic jobs); the ledger at that point."""
        expected = len(self.sent)
        last = {"at": 0.0}

        def done() -> bool:
            if time.monotonic() - last["at"] > 1.0:
                self.tick()
                last["at"] = time.monotonic()
            return all(v >= expected for v in self.ledger().values())

        try:
            servers.wait_until(done, timeout=timeout, interval=0.25)
        except AssertionError:
            raise AssertionError(
                f"not settled: {self.ledger()} of {expected}\n{self.workers[-1].log()[-3000:]}"
            )
        return self.ledger()

    def assert_nothing_lost_or_doubled(self, settle_seconds: float = 60.0) -> None:
        ledger = self.settle(settle_seconds)
        n = len(self.sent)
        assert ledger == dict.fromkeys(ledger, n), ledger
        assert not InboxStep.objects.filter(failed_at__isnull=False).exists()
        slowest = max(seconds for _, _, seconds in self.sent)
        assert slowest < ANSWER_DEADLINE_SECONDS, f"an answer took {slowest:.2f} s"

    def stop(self) -> None:
        for worker in self.workers:  # nothing to finish: a warm shutdown would wait for the running drain
            if worker.proc.poll() is None:
                worker.proc.kill()
                worker.proc.wait(timeout=10)
        self.server.stop()
        self.proxy.close()
        servers.forget_killed_workers()


@pytest.fixture
def world(tmp_path, org_a, org_b):
    world = World(tmp_path, org_a, org_b)
    yield world
    world.stop()
    servers.fresh_connections()


def test_with_redis_refusing_stored_webhooks_are_answered_200_and_every_inbox_step_is_done_once(world):
    world.burst(12)  # the worker is busy with these when Redis goes away
    world.proxy.refuse()
    try:
        during = [world.text(100 + i) for i in range(6)]
        assert [status for _, status, _ in during] == [200] * 6
        assert all(seconds < ANSWER_DEADLINE_SECONDS for _, _, seconds in during), during
    finally:
        world.proxy.restore()
    world.assert_nothing_lost_or_doubled()


def test_with_redis_paused_webhooks_are_answered_at_once_and_nothing_is_lost(world):
    world.burst(12)
    world.proxy.pause()
    try:
        # A short pause (every client of the proxy hangs; the real Redis serves everyone else as usual).
        during = [world.text(100 + i) for i in range(6)]
    finally:
        world.proxy.restore()
    assert [status for _, status, _ in during] == [200] * 6
    assert max(seconds for _, _, seconds in during) < ANSWER_DEADLINE_SECONDS, during
    world.assert_nothing_lost_or_doubled()


def test_with_postgresql_backends_terminated_the_next_webhooks_succeed_and_nothing_is_lost(world):
    world.burst(30)
    servers.wait_until(lambda: Message.objects.count() >= 2, timeout=30, message="the drain did not start")
    with connection.cursor() as cursor:  # mid-drain: the app's and the worker's connections, pooled or kept
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] >= 2
    after = [world.text(100 + i) for i in range(6)]
    assert [status for _, status, _ in after] == [200] * 6
    world.assert_nothing_lost_or_doubled()


def test_a_worker_killed_mid_drain_loses_nothing_and_doubles_nothing(world):
    # A backlog first, with no worker: a worker that kept up with the texts as they came in could finish
    # them all between two looks, and the kill would land after the drain. From a backlog of 200 the drain
    # runs for several batches.
    world.workers[0].proc.kill()
    world.workers[0].proc.wait(timeout=10)
    world.burst(200)
    world.workers.append(world.start_worker())
    servers.wait_until(
        lambda: Message.objects.count() >= 2, timeout=60, interval=0.01, message="the drain did not start"
    )
    world.workers[-1].proc.kill()  # SIGKILL: no cleanup, leases and the task left behind
    world.workers[-1].proc.wait(timeout=10)
    assert Message.objects.count() < 200, "the drain finished before the kill: the test proves nothing"
    # As if the leases (minutes) had run out.
    now = timezone.now()
    InboundEvent.objects.filter(processed_at__isnull=True).update(claimed_until=now)
    InboxStep.objects.filter(done_at__isnull=True).update(run_after=now)
    world.workers.append(world.start_worker())
    # A new worker takes a while to start on a busy host; what it must then do takes seconds.
    world.assert_nothing_lost_or_doubled(settle_seconds=120)
