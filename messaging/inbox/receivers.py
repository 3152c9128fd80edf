"""Receivers of the messaging signals (connected in MessagingConfig.ready): the inbox's side of every stored
message. Each re-reads by id and calls a service in messaging/inbox/actions.py, a stored message's through its
durable step (messaging/inbox/steps.py)."""

from __future__ import annotations

from messaging.inbox import actions as inbox
from messaging.inbox import steps


def on_inbound_message_stored(
    sender, message_id, conversation_id=None, organization_id=None, **kwargs
) -> None:
    # The step is durable (messaging/inbox/steps.py): a failure here is recorded on its row and retried.
    steps.run_step(
        message_id,
        blocked=bool(kwargs.get("blocked")),
        created_conversation=bool(kwargs.get("created_conversation")),
    )


def on_outbound_message_created(sender, message_id, sender_id=None, **kwargs) -> None:
    steps.run_step(message_id, outbound=True)


def on_message_status_changed(sender, message_id, **kwargs) -> None:
    inbox.handle_status(message_id)


def on_consent_changed(sender, organization_id, phone_number, **kwargs) -> None:
    from messaging.inbox import events

    events.publish_consent_changed(organization_id, phone_number)


def connect() -> None:
    from messaging import signals

    signals.inbound_message_stored.connect(on_inbound_message_stored, dispatch_uid="inbox.inbound")
    signals.outbound_message_created.connect(on_outbound_message_created, dispatch_uid="inbox.outbound")
    # The inbox's step of each stored message is written with it (messaging/inbox/steps.py).
    signals.make_durable(signals.inbound_message_stored, steps.expect_inbound)
    signals.make_durable(signals.outbound_message_created, steps.expect_outbound)
    signals.message_status_changed.connect(on_message_status_changed, dispatch_uid="inbox.status")
    signals.consent_changed.connect(on_consent_changed, dispatch_uid="inbox.consent")
