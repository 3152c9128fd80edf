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
