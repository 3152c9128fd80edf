"""Numbers: labels, assignments to members and teams, the organization's and each member's default sender,
and configuring a number's webhook at Twilio."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from messaging import access
from messaging.models import MemberMessagingSettings, MessagingSettings, PhoneNumber
from messaging.twilio.client import account_api, client_for_account
from messaging.twilio.errors import KIND_AUTH, TwilioError, twilio_call
from messaging.twilio.public_urls import incoming_sms_url
from tenancy import audit
from tenancy.models import Membership, Organization, Team

UNSET = object()


def _members_of(org: Organization, ids: list[int]) -> list[Membership]:
    found = list(Membership.objects.filter(organization=org, pk__in=ids))
    missing = set(ids) - {m.pk for m in found}
    if missing:
        raise ValidationError(f"Unknown member id(s): {', '.join(str(i) for i in sorted(missing))}.")
    return found


def _teams_of(org: Organization, ids: list[int]) -> list[Team]:
    found = list(Team.objects.filter(organization=org, pk__in=ids))
    missing = set(ids) - {t.pk for t in found}
    if missing:
        raise ValidationError(f"Unknown team id(s): {', '.join(str(i) for i in sorted(missing))}.")
    return found


@transaction.atomic
def do_update_number(
    number: PhoneNumber,
    actor,
    *,
    label: str | None = None,
    member_ids: list[int] | None = None,
    team_ids: list[int] | None = None,
) -> PhoneNumber:
    """Set the organization's label of a number and who it is assigned to (ids are checked in the org)."""
    org = number.organization
    changes: dict = {}
    if label is not None:
        label = label.strip()
        if len(label) > 100:
            raise ValidationError("A label has at most 100 characters.")
        if label != number.label:
            changes["label"] = [number.label, label]
            number.label = label
            number.save(update_fields=["label"])
    if member_ids is not None:
        members = _members_of(org, member_ids)
        number.assigned_members.set(members)
        changes["members"] = sorted(m.pk for m in members)
    if team_ids is not None:
        teams = _teams_of(org, team_ids)
        number.assigned_teams.set(teams)
        changes["teams"] = sorted(t.pk for t in teams)
    if changes:
        audit.record(org, actor, "phone_number.updated", number, changes)
    return number


@transaction.atomic
def do_update_messaging_settings(
    org: Organization, actor, *, default_number=UNSET, agents_may_use_any_number: bool | None = None
) -> MessagingSettings:
    """Change the organization's default sender (an active SMS-capable number, or None) and whether agents
    may send from any number."""
    settings_row, _ = MessagingSettings.objects.select_for_update().get_or_create(organization=org)
    changes: dict = {}
    if default_number is not UNSET:
        if default_number is not None:
            if default_number.organization_id != org.pk:
                raise ValidationError("Unknown number.")
            if not access.sendable_numbers(org).filter(pk=default_number.pk).exists():
                raise ValidationError(
                    f"{default_number.display_name} cannot send SMS (not SMS-capable, removed at Twilio, or "
                    "its account is not verified), so it cannot be the default sender."
                )
        if settings_row.default_number_id != (default_number.pk if default_number else None):
            changes["default_number"] = [
                settings_row.default_number_id,
                default_number.pk if default_number else None,
            ]
            settings_row.default_number = default_number
    if (
        agents_may_use_any_number is not None
        and agents_may_use_any_number != settings_row.agents_may_use_any_number
    ):
        changes["agents_may_use_any_number"] = [
            settings_row.agents_may_use_any_number,
            agents_may_use_any_number,
        ]
        settings_row.agents_may_use_any_number = agents_may_use_any_number
    if changes:
        settings_row.save()
        audit.record(org, actor, "messaging_settings.updated", settings_row, changes)
    return settings_row


@transaction.atomic
def do_set_member_default_number(
    membership: Membership, actor, number: PhoneNumber | None
) -> MemberMessagingSettings:
    """Set a member's personal default sender; it must be a number they may send from."""
    if number is not None and not access.may_send_from(membership, number):
        raise ValidationError(f"You may not send from {number.display_name}, so it cannot be your default.")
    row, _ = MemberMessagingSettings.objects.select_for_update().get_or_create(
        membership=membership, defaults={"organization": membership.organization}
    )
    new_id = number.pk if number else None
    if row.default_number_id != new_id:
        audit.record(
            membership.organization,
            actor,
            "member.default_number_set",
            membership,
            {"default_number": [row.default_number_id, new_id]},
        )
        row.default_number = number
        row.save()
    return row


@transaction.atomic
def do_set_composer_settings(membership: Membership, actor, *, enter_sends: bool) -> MemberMessagingSettings:
    """Set a member's composer preferences (whether Enter sends or starts a new line)."""
    row, _ = MemberMessagingSettings.objects.select_for_update().get_or_create(
        membership=membership, defaults={"organization": membership.organization}
    )
    if row.enter_sends != enter_sends:
        audit.record(
            membership.organization,
            actor,
            "member.composer_settings_set",
            membership,
            {"enter_sends": [row.enter_sends, enter_sends]},
        )
        row.enter_sends = enter_sends
        row.save()
    return row


@sensitive_variables()
def do_configure_number_webhook(number: PhoneNumber, actor) -> PhoneNumber:
    """ "Configure this number for me": point the number's SMS URL at our incoming-SMS endpoint (POST).

    Raises TwilioError when Twilio refuses or cannot be reached.
    """
    from messaging.twilio.accounts import do_mark_twilio_account_invalid, do_refresh_numbers

    account = number.account
    url = incoming_sms_url()

    def update():
        with twilio_call():
            return (
                account_api(client_for_account(account), account.account_sid)
                .incoming_phone_numbers(number.sid)
                .update(sms_url=url, sms_method="POST")
            )

    try:
        try:
            updated = update()
        except TwilioError as exc:
            if exc.code != 20404:
                raise
            # Our SID is stale: re-sync (which adopts a new SID for the same number) and try once more.
            do_refresh_numbers(account, actor)
            number.refresh_from_db()
            if not number.is_active:
                raise TwilioError(
                    f"{number.display_name} is no longer in this Twilio account.", code=20404, kind=exc.kind
                )
            updated = update()
    except TwilioError as exc:
        if exc.kind == KIND_AUTH:
            do_mark_twilio_account_invalid(account, exc)
        raise
    with transaction.atomic():
        old = [number.sms_url, number.sms_method]
        number.sms_url = (updated.sms_url or url)[:500]
        number.sms_method = (updated.sms_method or "POST").upper()[:6]
        number.save(update_fields=["sms_url", "sms_method"])
        audit.record(
            number.organization,
            actor,
            "phone_number.webhook_configured",
            number,
            {"sms_url": [old[0], number.sms_url], "sms_method": [old[1], number.sms_method]},
        )
    return number


def webhook_state(number: PhoneNumber) -> str:
    """ "configured" when the number's SMS URL (as last seen) is ours with POST, "elsewhere", or "unset"."""
    if not number.sms_url:
        return "unset"
    if number.sms_url == incoming_sms_url() and (number.sms_method or "POST") == "POST":
        return "configured"
    return "elsewhere"
