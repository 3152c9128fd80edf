"""Celery tasks: inbox (auto-archive, history sync). Periodic jobs take a non-blocking lock
(``quicksend.periodic.locked_job``) and return a small stats dict."""

from __future__ import annotations

from celery import shared_task

from quicksend.periodic import locked_job

LOCK_SECONDS = 15 * 60


@shared_task
@locked_job("inbox-auto-archive", seconds=LOCK_SECONDS)
def auto_archive() -> dict:
    from messaging.inbox.actions import auto_archive_conversations

    return auto_archive_conversations()


@shared_task
def sync_history_number(number_id: int) -> dict:
    """One bounded run for one number (the "sync now" action queues it)."""
    from messaging.twilio import history_sync

    number = history_sync.numbers_to_sync().filter(pk=number_id).first()
    if number is None:
        return {"skipped": "not syncable"}
    return _sync_number(number)


@locked_job(lambda number: f"history-sync-{number.pk}", seconds=LOCK_SECONDS)
def _sync_number(number) -> dict:
    from messaging.twilio import history_sync

    return history_sync.sync_number(number)


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
@locked_job("inbox-retry-steps", seconds=25)  # runs every 30 s; each step is leased
def retry_inbox_steps() -> dict:
    """Periodic: try again the inbox steps that are due (messaging/inbox/steps.py)."""
    from messaging.inbox import steps

    return steps.retry_due()
