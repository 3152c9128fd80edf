"""Celery tasks of automations. They take ids or small values and call ``campaigns.automations``; the
periodic ones take a non-blocking lock and return a small stats dict."""

from __future__ import annotations

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

LOCK_SECONDS = 5 * 60


def _run_locked(name: str, job) -> dict:
    if not cache.add(f"lock:{name}", 1, LOCK_SECONDS):
        return {"skipped": "locked"}
    try:
        return job()
    finally:
        cache.delete(f"lock:{name}")


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


@shared_task
def wake_due_enrollments() -> dict:
    """Periodic: hand every due enrollment (a wait that is over, a lost task) to a worker."""
    from campaigns.automations.engine import claim_due

    def job() -> dict:
        ids = claim_due()
        for enrollment_id in ids:
            advance_enrollment.delay(enrollment_id)
        return {"woken": len(ids)}

    return _run_locked("automations-wake", job)


@shared_task
def scan_time_triggers() -> dict:
    """Periodic: date triggers whose moment has come and conversations gone quiet."""
    from campaigns.automations.triggers import scan_time_triggers as scan

    return _run_locked("automations-time-triggers", lambda: scan(timezone.now()))
