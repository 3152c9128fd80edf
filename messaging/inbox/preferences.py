"""A member's notification preferences (desktop notification, sound): how new notifications reach them
beyond the bell, which always counts."""

from __future__ import annotations

from django.db import transaction

from messaging.models import MemberMessagingSettings
from tenancy import audit
from tenancy.models import Membership


def notification_preferences(membership: Membership) -> dict[str, bool]:
    found = (
        MemberMessagingSettings.objects.filter(membership=membership)
        .values("desktop_notifications", "notification_sound")
        .first()
    )
    return found or {"desktop_notifications": False, "notification_sound": False}


@transaction.atomic
def do_save_notification_preferences(
    membership: Membership, *, desktop_notifications: bool, notification_sound: bool
) -> MemberMessagingSettings:
    """Save the member's own choices (only theirs: there is no way to set another member's)."""
    row, _ = MemberMessagingSettings.objects.select_for_update().get_or_create(
        membership=membership, defaults={"organization_id": membership.organization_id}
    )
    changes = audit.save_changes(
        row,
        {"desktop_notifications": desktop_notifications, "notification_sound": notification_sound},
        {"desktop_notifications", "notification_sound"},
        clean_exclude=["organization", "membership", "default_number"],
    )
    if changes:
        audit.record(
            membership.organization, membership.user, "notification_preferences.updated", row, changes
        )
    return row
