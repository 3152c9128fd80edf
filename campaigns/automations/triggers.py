"""From what happened to who is enrolled: CRM events, inbound texts, and the periodic time triggers.

The receivers only queue a task (they run after the change commits, in the request); the tasks call the
functions here, which find the organization's active automations whose trigger matches and enroll.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from django.db import transaction

from campaigns.automations import engine
from campaigns.models import Automation
from crm.events import RecordEvent
from messaging.models import Message
from quicksend.queue import enqueue, enqueue_item

RECORD_TRIGGERS = ("record_created", "field_changed", "owner_changed", "status_changed")


def _active(organization_id: int, types) -> list[Automation]:
    return list(
        Automation.objects.select_related("organization").filter(
            organization_id=organization_id, status=Automation.Status.ACTIVE, trigger__type__in=list(types)
        )
    )


def _new_value_is(changes: dict, name: str, expected: str | None) -> bool:
    if name not in changes:
        return False
    if expected in (None, ""):
        return True
    new = changes[name][1] if isinstance(changes[name], list) and len(changes[name]) == 2 else None
    return str(new if new is not None else "").strip().casefold() == str(expected).strip().casefold()


def _fires(trigger: dict, event: dict) -> bool:
    kind = event["kind"]
    if trigger.get("record_type") and trigger["record_type"] != event["record_type"]:
        return False
    changes = event.get("changes") or {}
    if trigger["type"] == "record_created":
        return kind in ("created", "bulk_imported")
    if trigger["type"] == "owner_changed":
        return kind == "owner_changed"
    if trigger["type"] == "status_changed":
        return kind == "status_changed" and _new_value_is(changes, "status", trigger.get("to"))
    if trigger["type"] == "field_changed":
        name = trigger["field"]
        if kind == "updated":
            return _new_value_is(changes, name, trigger.get("to"))
        return kind == "bulk_updated" and name in changes
    return False


def on_record_event(event: dict) -> int:
    """Enroll the event's record(s) in every active automation it triggers. Returns how many enrolled."""
    automations = [a for a in _active(event["organization_id"], RECORD_TRIGGERS) if _fires(a.trigger, event)]
    if not automations:
        return 0
    ids = list(event.get("record_ids") or ()) or [event["record_id"]]
    enrolled = 0
    for automation in automations:
        for record_id in ids:
            record = engine.load_record(event["organization_id"], event["record_type"], record_id)
            if record is None:
                continue
            if automation.trigger["type"] == "field_changed" and event["kind"] == "bulk_updated":
                expected = automation.trigger.get("to")
                current = engine.conds.record_values(record).get(automation.trigger["field"])
                if expected and str(current or "").casefold() != str(expected).casefold():
                    continue
            key = (
                "created" if automation.trigger["type"] == "record_created" else f"event:{event['event_id']}"
            )
            enrolled += engine.enroll(automation, record=record, trigger_key=key) is not None
    return enrolled


def on_inbound_texts(message_ids: list[int]) -> dict:
    """``on_inbound_text`` for a batch, set-based: the texts read in one query, the replies noted with two
    UPDATEs per organization, the keyword automations read once per organization (only for one-word texts).
    Idempotent: a retried batch enrolls nobody twice (the trigger key) and ends no wait twice."""
    messages = list(
        Message.objects.select_related("conversation")
        .filter(pk__in=message_ids, direction="inbound")
        .order_by("id")
    )
    by_org: dict[int, set[str]] = {}
    for message in messages:
        by_org.setdefault(message.organization_id, set()).add(message.conversation.customer_number)
    woken = sum(engine.note_replies(org_id, numbers) for org_id, numbers in by_org.items())
    keyword_automations: dict[int, list[Automation]] = {}
    enrolled = 0
    for message in messages:
        word = (message.body or "").strip().upper()
        if not word or " " in word:
            continue
        if message.organization_id not in keyword_automations:
            keyword_automations[message.organization_id] = _active(
                message.organization_id, ["inbound_keyword"]
            )
        enrolled += _enroll_by_keyword(message, word, keyword_automations[message.organization_id])
    return {"texts": len(messages), "woken": woken, "enrolled": enrolled}


def on_inbound_text(message_id: int) -> dict:
    """A customer texted: running enrollments note the reply; a keyword trigger may enroll them."""
    message = (
        Message.objects.select_related("conversation").filter(pk=message_id, direction="inbound").first()
    )
    if message is None:
        return {"skipped": "no such inbound text"}
    conversation = message.conversation
    woken = engine.note_reply(message.organization_id, conversation.customer_number)
    word = (message.body or "").strip().upper()
    enrolled = 0
    if word and " " not in word:
        enrolled = _enroll_by_keyword(message, word, _active(message.organization_id, ["inbound_keyword"]))
    return {"woken": woken, "enrolled": enrolled}


def _enroll_by_keyword(message: Message, word: str, automations: list[Automation]) -> int:
    """Enroll the texter in the active keyword automations whose keyword (and number) the text matches."""
    conversation = message.conversation
    enrolled = 0
    for automation in automations:
        trigger = automation.trigger
        if trigger["keyword"] != word:
            continue
        if trigger.get("number") and trigger["number"] != conversation.phone_number_id:
            continue
        enrolled += _enroll_texter(automation, conversation, f"keyword:{message.pk}")
    return enrolled


def _enroll_texter(
    automation: Automation, conversation, trigger_key: str, now: datetime | None = None
) -> bool:
    """Enroll the conversation's customer (and its record, if it has one) once for ``trigger_key``."""
    record = engine.load_record(
        automation.organization_id, conversation.record_type, conversation.record_id or 0
    )
    enrolled = engine.enroll(
        automation, record=record, phone=conversation.customer_number, trigger_key=trigger_key, now=now
    )
    return enrolled is not None


def scan_time_triggers(now: datetime) -> dict:
    """Date triggers whose moment came since the last scan, and conversations that went quiet."""
    enrolled = 0
    for automation in Automation.objects.select_related("organization").filter(
        status=Automation.Status.ACTIVE, trigger__type__in=["date_reached", "conversation_idle"]
    ):
        if automation.trigger["type"] == "date_reached":
            for record, key in engine.due_date_enrollments(automation, now):
                enrolled += engine.enroll(automation, record=record, trigger_key=key, now=now) is not None
        else:
            for conversation in engine.idle_conversations(automation, now):
                key = f"idle:{conversation.pk}:{conversation.last_message_at.isoformat()}"
                enrolled += _enroll_texter(automation, conversation, key, now=now)
        Automation.objects.filter(pk=automation.pk).update(scanned_until=now)
    return {"enrolled": enrolled}


# --- receivers (connected in CampaignsConfig.ready) ---------------------------------------------------------


def record_changed_receiver(sender, event: RecordEvent, **kwargs) -> None:
    if event.kind == "deleted":
        return
    payload = dataclasses.asdict(event)
    payload["record_ids"] = list(payload["record_ids"])
    enqueue("campaigns.tasks.handle_record_event", payload)


def inbound_text_receiver(sender, message_id: int, **kwargs) -> None:
    # One task per batch of stored texts (``quicksend.queue.coalesce``), else one per text.
    transaction.on_commit(lambda: enqueue_item("campaigns.tasks.handle_inbound_texts", message_id))
