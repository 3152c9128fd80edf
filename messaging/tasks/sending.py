"""Celery tasks: sending. ``send_message_task(message_id)`` hands one stored message to Twilio through
``messaging.services.delivery.deliver`` and schedules the retries it asks for."""

from __future__ import annotations

import time

from celery import shared_task

from messaging.services import delivery


@shared_task(bind=True, max_retries=None, acks_late=True)
def send_message_task(self, message_id: int) -> str:
    """Hand message ``message_id`` to Twilio. Returns what happened, in a word.

    Throttled or retryable: the task is retried later (``self.retry(countdown=…)``), never sleeping in a
    worker. Embedded mode runs tasks inline with no broker to schedule a retry on, so there it waits in
    place (at most 5 s per wait).
    """
    while True:
        try:
            return delivery.deliver(message_id)
        except delivery.RetryLater as later:
            if not self.request.is_eager:
                raise self.retry(countdown=later.countdown, max_retries=None)
            time.sleep(min(later.countdown, 5.0))
