"""The notify step: an in-app notification to a member, the record's owner or a team's members.

The message's merge fields are filled in for the record (the owner is the agent). Each recipient gets a
``Notification`` of kind ``automation`` (no conversation; the text, linking to the record), pushed live to
them after the step commits: the bell's panel lists it, and the member's own preferences decide whether it
also shows as a desktop notification or plays a sound. Only active members of the organization are told.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from crm.models import CrmRecord
from messaging.inbox import events
from messaging.models import Notification
from templates_app.rendering import render
from tenancy.models import Membership


@dataclass(frozen=True)
class Recipients:
    user_ids: list[int]
    names: list[str]
    reason: str = ""  # why nobody is told, when ``user_ids`` is empty


def recipients(organization_id: int, step: dict, record: CrmRecord | None) -> Recipients:
    """The active members a notify step reaches (a member, the record's owner, or a team's members)."""
    members = Membership.objects.filter(organization_id=organization_id, is_active=True).select_related(
        "user"
    )
    if step.get("team") not in (None, ""):
        members = members.filter(teams__pk=step["team"])
        empty = "The team has no active members"
    elif step.get("user") == "owner":
        if record is None or not record.owner_id:
            return Recipients([], [], "The record has no owner")
        members = members.filter(user_id=record.owner_id)
        empty = "The record's owner is no longer an active member"
    else:
        members = members.filter(user_id=step.get("user"))
        empty = "That member is no longer active"
    found = sorted(members, key=lambda m: m.user_id)
    if not found:
        return Recipients([], [], empty)
    return Recipients([m.user_id for m in found], [m.user.get_full_name() or m.user.email for m in found])


def note_text(automation_name: str, step: dict, record: CrmRecord | None, organization) -> str:
    """What the notification says: the automation's name, then the step's message for this record."""
    owner = getattr(record, "owner", None) if record is not None else None
    body = render(step["text"], record, sender=owner, org=organization).text
    return f"{automation_name}: {body}"[:300]


def notify_members(
    organization_id: int, user_ids: list[int], text: str, record: CrmRecord | None
) -> list[Notification]:
    """One notification per member, pushed to each once the caller's transaction commits."""
    created = Notification.objects.bulk_create(
        [
            Notification(
                organization_id=organization_id,
                recipient_id=user_id,
                kind=Notification.Kind.AUTOMATION,
                text=text[:300],
                record_type=record.record_type if record is not None else "",
                record_id=record.pk if record is not None else None,
            )
            for user_id in user_ids
        ]
    )
    for notification in created:
        transaction.on_commit(lambda n=notification: events.publish_notification_created(n))
    return created
