"""Celery tasks: receiving (they take ids, re-check state, and call messaging.services.receiving)."""

from __future__ import annotations

from celery import shared_task

from messaging.twilio.errors import TwilioError
from quicksend.periodic import locked_job


@shared_task(acks_late=True)
def process_inbound_event_task(event_id: int) -> int | None:
    """Turn one stored inbound webhook into a message (idempotent). The webhook queues a drain instead; this
    stays for a single event processed by hand."""
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
@locked_job("messaging.poll_stuck_messages", seconds=900)
def poll_stuck_messages() -> dict:
    """Periodic: ask Twilio about messages stuck short of a final status for 12 h (bounded)."""
    from messaging.services.receiving import poll_stuck_messages as poll

    return poll()


@shared_task
@locked_job("messaging.requeue_inbound_events", seconds=50)  # runs every 60 s
def requeue_inbound_events() -> dict:
    """Periodic sweep: queue a drain for stored webhooks no drain holds (a lost task, an expired lease)."""
    from messaging.twilio.ingest import sweep

    return sweep()


@shared_task(acks_late=True)
def drain_inbound_events() -> dict:
    """Turn stored inbound webhooks into messages until none is left (messaging.twilio.ingest)."""
    from messaging.twilio.ingest import drain

    return drain("inbound")


@shared_task(acks_late=True)
def drain_status_events() -> dict:
    """Apply stored status callbacks until none is left (messaging.twilio.ingest)."""
    from messaging.twilio.ingest import drain

    return drain("status")
