"""Celery tasks: inbox (auto-archive, history sync). Periodic jobs take a non-blocking lock (the cache:
Redis in production) and return a small stats dict."""

from __future__ import annotations

from celery import shared_task
from django.core.cache import cache

LOCK_SECONDS = 15 * 60


def _locked(name: str):
    return cache.add(f"lock:{name}", 1, LOCK_SECONDS)


@shared_task
def auto_archive() -> dict:
    from messaging.inbox.actions import auto_archive_conversations

    if not _locked("inbox-auto-archive"):
        return {"skipped": "locked"}
    try:
        return auto_archive_conversations()
    finally:
        cache.delete("lock:inbox-auto-archive")


@shared_task
def sync_history_number(number_id: int) -> dict:
    """One bounded run for one number (the "sync now" action queues it)."""
    from messaging.twilio import history_sync

    number = history_sync.numbers_to_sync().filter(pk=number_id).first()
    if number is None:
        return {"skipped": "not syncable"}
    name = f"history-sync-{number_id}"
    if not _locked(name):
        return {"skipped": "locked"}
    try:
        return history_sync.sync_number(number)
    finally:
        cache.delete(f"lock:{name}")


@shared_task
def sync_history_all() -> dict:
    """Periodic: one bounded run per syncable number."""
    from messaging.twilio import history_sync

    totals = {"numbers": 0, "imported": 0, "errors": 0}
    for number_id in history_sync.numbers_to_sync().values_list("pk", flat=True):
        result = sync_history_number(number_id)
        totals["numbers"] += 1
        totals["imported"] += result.get("imported", 0)
        totals["errors"] += bool(result.get("error"))
    return totals


@shared_task
def retry_inbox_steps() -> dict:
    """Periodic: try again the inbox steps that are due (messaging/inbox/steps.py)."""
    from messaging.inbox import steps

    if not cache.add("lock:inbox-retry-steps", 1, 300):
        return {"skipped": "locked"}
    try:
        return steps.retry_due()
    finally:
        cache.delete("lock:inbox-retry-steps")
