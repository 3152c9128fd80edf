"""CRM domain events: the one mechanism automations (and anything else) subscribe to.

A service that changes a record calls ``emit(...)``; receivers of ``record_changed`` run **after the
transaction commits** (never for a rolled-back change), in the same process. Subscribe with::

    from django.dispatch import receiver
    from crm.events import record_changed, RecordEvent

    @receiver(record_changed)
    def on_record_changed(sender, event: RecordEvent, **kwargs):
        if event.kind == "status_changed" and event.record_type == "lead":
            my_task.delay(event.record_id)   # keep receivers fast: hand heavy work to a task

Kinds: ``created``, ``updated`` (any field; ``changes`` lists them), ``status_changed``, ``owner_changed``,
``deleted``, and for CSV imports ``bulk_imported`` / ``bulk_updated`` (one event per import batch with
``record_ids`` and, for updates, the names of the fields written in ``changes``, instead of one per row).
An update that changes the status and other fields emits ``updated`` and ``status_changed``.
A receiver that raises is logged and does not stop the others (``send_robust``).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.dispatch import Signal

log = logging.getLogger(__name__)

# kwargs: event (RecordEvent)
record_changed = Signal()

KINDS = ("created", "updated", "status_changed", "owner_changed", "deleted", "bulk_imported", "bulk_updated")


@dataclass(frozen=True)
class RecordEvent:
    kind: str
    organization_id: int
    record_type: str
    record_id: int | None
    actor_id: int | None = None
    # field → [old, new] (JSON-friendly strings/numbers)
    changes: dict[str, list[Any]] = field(default_factory=dict)
    record_ids: tuple[int, ...] = ()
    # Unique per event, so a receiver's retried task can tell one event from another.
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)


def emit(event: RecordEvent) -> None:
    """Send ``event`` to the receivers once the current transaction commits."""
    assert event.kind in KINDS, event.kind

    def send() -> None:
        for receiver, result in record_changed.send_robust(sender=RecordEvent, event=event):
            if isinstance(result, Exception):
                log.error("crm event receiver %r failed on %s", receiver, event.kind, exc_info=result)

    transaction.on_commit(send)
