"""Periodic jobs run once at a time: the lock of quicksend.periodic.locked_job."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from quicksend.periodic import locked_job


@pytest.fixture(autouse=True)
def _clean_locks():
    yield
    cache.delete_many(["lock:test.job", "lock:test.number-7", "lock:test.number-8"])


def test_a_job_runs_and_returns_its_stats_when_nobody_holds_its_lock():
    @locked_job("test.job")
    def job() -> dict:
        return {"done": 3}

    assert job() == {"done": 3}
    assert cache.add("lock:test.job", 1, 60), "the lock is released after the run"


def test_a_job_whose_lock_is_held_is_skipped_without_running():
    ran = []

    @locked_job("test.job")
    def job() -> dict:
        ran.append(1)
        return {"done": 1}

    assert cache.add("lock:test.job", 1, 60)
    assert job() == {"skipped": "locked"}
    assert ran == []


def test_a_job_that_fails_still_releases_its_lock():
    @locked_job("test.job")
    def job() -> dict:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        job()
    assert cache.add("lock:test.job", 1, 60)


def test_a_lock_named_from_the_arguments_only_excludes_the_same_arguments():
    @locked_job(lambda number_id: f"test.number-{number_id}")
    def job(number_id: int) -> dict:
        return {"number": number_id}

    assert cache.add("lock:test.number-7", 1, 60)
    assert job(7) == {"skipped": "locked"}
    assert job(8) == {"number": 8}


def test_the_recovery_sweeps_locks_run_out_before_their_next_run():
    # A worker killed in a sweep leaves its lock behind: the next run must still go ahead, or what the
    # sweep recovers (texts stored but not processed, inbox steps, single sends never handed over) would
    # wait for the lock as well as for the sweep.
    from messaging.inbox.tasks import retry_inbox_steps
    from messaging.tasks import sending
    from messaging.tasks.receiving import requeue_inbound_events
    from quicksend.periodic import jobs

    periods = {job.name: job.every_seconds for job in jobs()}
    locks = {
        "messaging.requeue_inbound_events": requeue_inbound_events.run.lock_seconds,
        "messaging.retry_inbox_steps": retry_inbox_steps.run.lock_seconds,
        "messaging.requeue_stranded_sends": sending._requeue_stranded_once.lock_seconds,
    }
    for name, seconds in locks.items():
        assert seconds < periods[name], (name, seconds, periods[name])


def test_a_job_says_how_long_its_lock_lasts():
    @locked_job("test.job", seconds=42)
    def job() -> dict:
        return {}

    assert job.lock_seconds == 42
