"""The one registry of periodic jobs.

Production runs them through Celery beat (``beat_schedule()``); the embedded mode runs them in a daemon
thread of the web process (``EmbeddedScheduler``), so ``make run`` needs no extra process.
Apps add their jobs with ``register(...)`` in their ``AppConfig.ready``, and guard each with ``@locked_job``:
several workers or beats may start the same job, and only one of them runs it.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    task: str  # the Celery task's name (for @shared_task without name=, its dotted path)
    every_seconds: float


_JOBS: dict[str, PeriodicJob] = {}

SKIPPED_LOCKED = {"skipped": "locked"}


def locked_job(name: str | Callable[..., str], *, seconds: int = 900) -> Callable:
    """Run the decorated job only when no other process is running it.

    The lock is a non-blocking ``cache.add("lock:<name>")`` (Redis in production, so it holds across
    processes and hosts) that expires after ``seconds`` should the holder die, and is released when the job
    ends, however it ends. A job that finds the lock taken returns ``{"skipped": "locked"}`` at once; else
    the job's own stats dict. ``name`` may be a function of the job's arguments (one lock per number, …).

    A worker killed in the job leaves the lock until it expires, and every run until then is skipped: a job
    that recovers from killed workers (a sweep) takes ``seconds`` shorter than its period, so its next run
    goes ahead whatever happened to the last one. The wrapper's ``lock_seconds`` says how long it is.
    """

    def decorate(job: Callable[..., dict]) -> Callable[..., dict]:
        @functools.wraps(job)
        def run(*args, **kwargs) -> dict:
            from django.core.cache import cache

            key = "lock:" + (name(*args, **kwargs) if callable(name) else name)
            if not cache.add(key, 1, timeout=seconds):
                return dict(SKIPPED_LOCKED)
            try:
                return job(*args, **kwargs)
            finally:
                cache.delete(key)

        run.lock_seconds = seconds
        return run

    return decorate


def register(name: str, task: str, every_seconds: float) -> None:
    _JOBS[name] = PeriodicJob(name, task, every_seconds)


def jobs() -> list[PeriodicJob]:
    return list(_JOBS.values())


def beat_schedule() -> dict:
    return {job.name: {"task": job.task, "schedule": job.every_seconds} for job in _JOBS.values()}


class EmbeddedScheduler(threading.Thread):
    """Ticks every registered job in-process (embedded mode only)."""

    def __init__(self, tick: float = 1.0):
        super().__init__(name="quicksend-scheduler", daemon=True)
        self.tick = tick
        self._stop_event = threading.Event()
        self._next_run: dict[str, float] = {}

    def stop(self) -> None:
        self._stop_event.set()

    def run_due(self, now: float | None = None) -> list[str]:
        now = time.monotonic() if now is None else now
        ran = []
        for job in jobs():
            if self._next_run.get(job.name, 0) <= now:
                self._next_run[job.name] = now + job.every_seconds
                try:
                    from celery import current_app as app

                    app.loader.import_default_modules()
                    app.tasks[job.task].apply()
                    ran.append(job.name)
                except Exception:
                    logger.exception("periodic job %s failed", job.name)
                finally:
                    from django.db import close_old_connections

                    close_old_connections()
        return ran

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.run_due()
            self._stop_event.wait(self.tick)


_scheduler: EmbeddedScheduler | None = None
_lock = threading.Lock()


def start_embedded_scheduler() -> EmbeddedScheduler:
    global _scheduler
    with _lock:
        if _scheduler is None or not _scheduler.is_alive():
            _scheduler = EmbeddedScheduler()
            _scheduler.start()
        return _scheduler
