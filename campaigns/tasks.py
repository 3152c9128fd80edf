"""Celery tasks of automations. They take ids or small values and call ``campaigns.automations``; the
periodic ones take a non-blocking lock (``quicksend.periodic.locked_job``) and return a small stats dict."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from quicksend.periodic import locked_job

LOCK_SECONDS = 5 * 60


@shared_task(acks_late=True)
def advance_enrollment(enrollment_id: int) -> dict:
    from campaigns.automations.engine import advance

    return {"enrollment": enrollment_id, "status": advance(enrollment_id)}


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def handle_record_event(event: dict) -> dict:
    from campaigns.automations.triggers import on_record_event

    return {"enrolled": on_record_event(event)}


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def handle_inbound_text(message_id: int) -> dict:
    from campaigns.automations.triggers import on_inbound_text

    return on_inbound_text(message_id)


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def handle_inbound_texts(message_ids: list[int]) -> dict:
    """``handle_inbound_text`` for a batch of texts (one task per batch of stored texts; idempotent, so a
    retry redoes the whole batch safely)."""
    from campaigns.automations.triggers import on_inbound_texts

    return on_inbound_texts(message_ids)


@shared_task
@locked_job("automations-wake", seconds=LOCK_SECONDS)
def wake_due_enrollments() -> dict:
    """Periodic: hand every due enrollment (a wait that is over, a lost task) to a worker."""
    from campaigns.automations.engine import claim_due

    ids = claim_due()
    for enrollment_id in ids:
        advance_enrollment.delay(enrollment_id)
    return {"woken": len(ids)}


@shared_task
@locked_job("automations-time-triggers", seconds=LOCK_SECONDS)
def scan_time_triggers(at: str = "") -> dict:
    """Periodic: date triggers whose moment has come and conversations gone quiet. ``at`` (an ISO instant)
    scans as of that moment instead of now: a window the scheduler missed can be run by hand."""
    from django.utils.dateparse import parse_datetime

    from campaigns.automations.triggers import scan_time_triggers as scan

    return scan(parse_datetime(at) if at else timezone.now())


# --- drip campaigns ----------------------------------------------------------------------------------


@shared_task
@locked_job("campaigns-dispatch", seconds=60)
def dispatch_campaigns() -> dict:
    """Periodic (every second): release each sender's next slots of due campaign steps."""
    from campaigns.drip.dispatcher import dispatch

    return dispatch()


@shared_task(acks_late=True)
def send_campaign_steps(items: list) -> dict:
    """The texts one tick released: ``[(recipient id, step index, due time)]``, stored together, then
    handed to Twilio at their due times. A redelivered task finds its steps done."""
    from campaigns.drip.dispatcher import deliver_due, send_steps

    done = send_steps([(int(r), int(s), float(at) if at is not None else None) for r, s, at in items])
    deliver_due(done.deliveries)
    return {"released": len(items), "sent": sum(o == "sent" for o in done.outcomes.values())}


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def campaign_inbound_text(message_id: int) -> dict:
    from campaigns.drip.receivers import on_inbound_text

    return on_inbound_text(message_id)


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def campaign_inbound_texts(message_ids: list[int]) -> dict:
    """``campaign_inbound_text`` for a batch of texts (one task per batch of stored texts; idempotent, so a
    retry redoes the whole batch safely)."""
    from campaigns.drip.receivers import on_inbound_texts

    return on_inbound_texts(message_ids)
