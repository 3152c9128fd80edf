"""Receivers (connected in MessagingConfig.ready): the inbox's side of every stored message (through its
durable step, messaging/inbox/steps.py) and of a Twilio account whose credentials stopped working, and
messaging's side of a deleted CRM record. Each re-reads by id and calls a service of the inbox."""

from __future__ import annotations

from messaging.inbox import actions as inbox
from messaging.inbox import steps


def on_inbound_message_stored(
    sender, message_id, conversation_id=None, organization_id=None, **kwargs
) -> None:
    if kwargs.get("filed"):
        return  # stored by a batch that filed it in its own transaction (messaging/inbox/inbound_batch.py)
    # The step is durable (messaging/inbox/steps.py): a failure here is recorded on its row and retried.
    steps.run_step(
        message_id,
        blocked=bool(kwargs.get("blocked")),
        created_conversation=bool(kwargs.get("created_conversation")),
    )


def on_outbound_message_created(sender, message_id, sender_id=None, file_later=False, **kwargs) -> None:
    if file_later:
        # Its sender has the answer already: a drain in a worker files it with the others sent meanwhile.
        from messaging.inbox.outbound_batch import wake_filing

        wake_filing(message_id)
        return
    steps.run_step(message_id, outbound=True)


def on_message_status_changed(sender, message_id, **kwargs) -> None:
    inbox.handle_status(message_id)


def on_twilio_account_invalidated(sender, organization_id, account_id, message="", **kwargs) -> None:
    from messaging.inbox.notifications import notify_account_invalid

    notify_account_invalid(organization_id, account_id, message)


def on_record_changed(sender, event, **kwargs) -> None:
    if event.kind == "deleted" and event.record_id is not None:
        from messaging.inbox.conversations import forget_record

        forget_record(event.organization_id, event.record_type, event.record_id)


def on_consent_changed(sender, organization_id, phone_number, **kwargs) -> None:
    from messaging.inbox import events

    events.publish_consent_changed(organization_id, phone_number)


def connect() -> None:
    from crm.events import record_changed
    from messaging import signals

    steps.set_handlers(inbound=inbox.handle_inbound, outbound=inbox.handle_outbound)
    record_changed.connect(on_record_changed, dispatch_uid="messaging.record_changed")
    signals.inbound_message_stored.connect(on_inbound_message_stored, dispatch_uid="inbox.inbound")
    signals.outbound_message_created.connect(on_outbound_message_created, dispatch_uid="inbox.outbound")
    # The inbox's step of each stored message is written with it (messaging/inbox/steps.py).
    signals.make_durable(signals.inbound_message_stored, steps.expect_inbound)
    signals.make_durable(signals.outbound_message_created, steps.expect_outbound)
    signals.message_status_changed.connect(on_message_status_changed, dispatch_uid="inbox.status")
    signals.twilio_account_invalidated.connect(on_twilio_account_invalidated, dispatch_uid="inbox.account")
    signals.consent_changed.connect(on_consent_changed, dispatch_uid="inbox.consent")
