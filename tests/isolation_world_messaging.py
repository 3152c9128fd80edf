"""Isolation builders for the messaging models (rows created directly: no Twilio call)."""

from messaging.models import MemberMessagingSettings, MessagingSettings, PhoneNumber, TwilioAccount
from tenancy.models import Membership, Team
from tests.factories_messaging import PhoneNumberFactory, TwilioAccountFactory
from tests.isolation_world import builds


@builds(TwilioAccount)
def build_twilio_account(org, admin, canary):
    return TwilioAccountFactory(
        organization=org, friendly_name=f"Account {canary}", auth_token=f"tok{canary}"
    )


@builds(PhoneNumber)
def build_phone_number(org, admin, canary):
    account = TwilioAccount.objects.filter(organization=org).first()
    account = account or build_twilio_account(org, admin, canary)
    number = PhoneNumberFactory(account=account, label=f"Label {canary}", friendly_name=f"Friendly {canary}")
    number.assigned_members.set(Membership.objects.filter(organization=org))
    number.assigned_teams.set(Team.objects.filter(organization=org))
    return number


@builds(MessagingSettings)
def build_messaging_settings(org, admin, canary):
    number = PhoneNumber.objects.filter(organization=org).first() or build_phone_number(org, admin, canary)
    row, _ = MessagingSettings.objects.update_or_create(organization=org, defaults={"default_number": number})
    return row


@builds(MemberMessagingSettings)
def build_member_messaging_settings(org, admin, canary):
    number = PhoneNumber.objects.filter(organization=org).first() or build_phone_number(org, admin, canary)
    membership = Membership.objects.get(organization=org, user=admin)
    row, _ = MemberMessagingSettings.objects.update_or_create(
        membership=membership, defaults={"organization": org, "default_number": number}
    )
    return row
