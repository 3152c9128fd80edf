"""Where processing failures show: what ``/healthz`` reports under ``processing`` (registered in
``MessagingConfig.ready``), and the admin's lists (messaging/admin.py: inbound events, inbox steps).

Nothing on the path of a customer's message is only logged: a webhook that could not be processed stays
an ``InboundEvent`` without ``processed_at`` (retried by the drains, at most ``ingest.MAX_ATTEMPTS`` times),
an inbox step that failed stays an ``InboxStep`` without ``done_at`` (retried with backoff, at most
``steps.MAX_ATTEMPTS`` times). What is still not done after its last try is counted here as ``failed`` until
an admin retries it ("Retry now") or deletes it.
"""

from __future__ import annotations

from messaging.inbox import steps
from messaging.models import InboundEvent, StatusEvent
from messaging.twilio import ingest
from quicksend import realtime


def processing_health() -> dict:
    """Counts for ``/healthz``: ``failed`` (the sum an admin must look at) and its parts, what waits for a
    retry, and the live events this process could not deliver since it started."""
    counts = {
        "inbound_events_failed": InboundEvent.objects.filter(
            processed_at__isnull=True, attempts__gte=ingest.MAX_ATTEMPTS
        ).count(),
        "status_events_failed": StatusEvent.objects.filter(attempts__gte=ingest.MAX_ATTEMPTS).count(),
        **steps.failure_counts(),
    }
    failed = counts["inbound_events_failed"] + counts["status_events_failed"] + counts["inbox_steps_failed"]
    live = realtime.delivery_failures()
    return {
        "failed": failed,
        **counts,
        "live_events_failed_in_this_process": live["count"],
        "see": "/admin/messaging/inboxstep/?state=failed and /admin/messaging/inboundevent/?state=failed",
    }
