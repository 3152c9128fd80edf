"""Celery tasks: receiving (they take ids, re-check state, and call messaging.services.receiving)."""

from __future__ import annotations

from celery import shared_task

from messaging.twilio_errors import TwilioError


@shared_task(acks_late=True)
def process_inbound_event_task(event_id: int) -> int | None:
    """Turn a stored inbound webhook into a message (idempotent)."""
    from messaging.services.receiving import process_inbound_event

    message = process_inbound_event(event_id)
    return message.pk if message else None


@shared_task(bind=True, acks_late=True, max_retries=5)
def record_other_tool_message_task(self, account_id: int, sid: str) -> int | None:
    """Fetch a message another tool sent from our number and record it; Twilio hiccups retry with backoff."""
    from messaging.services.receiving import record_other_tool_message

    try:
        message = record_other_tool_message(account_id, sid)
    except TwilioError as exc:
        if exc.retryable:
            raise self.retry(exc=exc, countdown=min(600, 5 * 2**self.request.retries))
        return None
    return message.pk if message else None


@shared_task
def poll_stuck_messages() -> dict:
    """Periodic: ask Twilio about messages stuck short of a final status for 12 h (bounded, locked)."""
    from django.core.cache import cache

    from messaging.services.receiving import poll_stuck_messages as poll

    lock = "lock:messaging.poll_stuck_messages"
    if not cache.add(lock, 1, timeout=900):
        return {"skipped": "locked"}
    try:
        return poll()
    finally:
        cache.delete(lock)


@shared_task
def requeue_inbound_events() -> dict:
    """Periodic: re-queue inbound events whose processing task was lost (queued > 2 minutes ago)."""
    from datetime import timedelta

    from django.core.cache import cache
    from django.utils import timezone

    from messaging.models import InboundEvent

    lock = "lock:messaging.requeue_inbound_events"
    if not cache.add(lock, 1, timeout=300):
        return {"skipped": "locked"}
    try:
        ids = list(
            InboundEvent.objects.filter(
                processed_at__isnull=True,
                received_at__lt=timezone.now() - timedelta(minutes=2),
                attempts__lt=10,
            )
            .order_by("received_at")
            .values_list("id", flat=True)[:500]
        )
        for event_id in ids:
            process_inbound_event_task.delay(event_id)
        return {"requeued": len(ids)}
    finally:
        cache.delete(lock)
