"""Messaging domain signals: the seams between the send/receive pipeline and the inbox.

All are sent **after the transaction commits** (``send_after_commit``), in the process that made the change;
receivers must be quick and hand heavy work to a task. kwargs are ids and small values, never model
instances, so a receiver re-reads what it needs.

A receiver whose work must never be lost (the inbox's step of every stored message) also registers a
``record`` with ``make_durable``: it runs inside the sender's transaction when the signal is scheduled and
writes the receiver's outbox row there, so the work survives a failure or a crash after commit and is
retried from that row (messaging/inbox/steps.py). Whoever announces a stored message gets this for free.

- ``inbound_message_stored(message_id, conversation_id, organization_id, created_conversation, blocked)``:
  an inbound text was stored in its conversation (after record matching and keyword handling). The inbox
  raises notifications and unread counts from it; ``blocked`` numbers raise nothing.
- ``outbound_message_created(message_id, conversation_id, organization_id, sender_id, file_later)``: a
  message to send was stored (status ``pending``); the sending user's own thread updates from it.
  ``file_later``: its sender has the answer already (the API), so the inbox may file it from a worker.
- ``message_status_changed(message_id, conversation_id, organization_id, status, error_code)``: a message's
  status moved forward (webhooks, polling, the send task).
- ``consent_changed(organization_id, phone_number, action, method)``: the consent of a number changed; the
  inbox tells the open threads of that number (their composer enables or disables at once).
- ``twilio_account_invalidated(organization_id, account_id, message)``: Twilio refused an account's
  credentials (error 20003) and the account was marked invalid; the organization's admins are notified.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.dispatch import Signal

log = logging.getLogger(__name__)

inbound_message_stored = Signal()
outbound_message_created = Signal()
message_status_changed = Signal()
consent_changed = Signal()
# Twilio refused an account's credentials (20003). kwargs: organization_id, account_id, message.
twilio_account_invalidated = Signal()


_durable: dict[int, list] = {}


def make_durable(signal: Signal, record) -> None:
    """Call ``record(**kwargs)`` inside the sender's transaction whenever ``signal`` is scheduled."""
    records = _durable.setdefault(id(signal), [])
    if record not in records:
        records.append(record)


def send_after_commit(signal: Signal, **kwargs) -> None:
    """Send ``signal`` once the current transaction commits; a failing receiver is logged, not raised (a
    receiver that must not fail silently made itself durable: ``make_durable``)."""
    for record in _durable.get(id(signal), ()):
        record(**kwargs)

    def send() -> None:
        for receiver, result in signal.send_robust(sender=None, **kwargs):
            if isinstance(result, Exception):
                log.error("messaging signal receiver %r failed", receiver, exc_info=result)

    transaction.on_commit(send)
