"""Access helpers for Twilio accounts and numbers, and the one answer to "which numbers may this member send
from?" (used by the composer, the send pipeline and the API)."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.http import Http404

from messaging.models import MemberMessagingSettings, MessagingSettings, PhoneNumber, TwilioAccount
from tenancy.access import get_in_org
from tenancy.models import Membership, Organization


def _by_id_or_sid(queryset: QuerySet, org: Organization, ref, sid_prefix: str, sid_field: str):
    # Accounts and numbers can be named by our id or by Twilio's SID (AC…/PN…), which is what admins see in
    # the Twilio Console. Either way the lookup stays inside the organization.
    text = str(ref)
    if text.startswith(sid_prefix):
        try:
            return queryset.get(organization=org, **{sid_field: text})
        except queryset.model.DoesNotExist:
            raise Http404("Not found.")
    return get_in_org(queryset, org, text)


def access_twilio_account(org: Organization, ref) -> TwilioAccount:
    """An account of the organization by id or Account SID; 404 for missing and foreign alike."""
    return _by_id_or_sid(TwilioAccount.objects.all(), org, ref, "AC", "account_sid")


def access_phone_number(org: Organization, ref) -> PhoneNumber:
    """A number of the organization by id or number SID (PN…); 404 for missing and foreign alike."""
    return _by_id_or_sid(PhoneNumber.objects.select_related("account"), org, ref, "PN", "sid")


def org_has_verified_twilio(org: Organization) -> bool:
    return TwilioAccount.objects.filter(organization=org, status=TwilioAccount.Status.VALID).exists()


def messaging_settings_for(org: Organization) -> MessagingSettings:
    """The organization's settings (an unsaved default row until an admin first saves them)."""
    found = MessagingSettings.objects.filter(organization=org).select_related("default_number").first()
    return found or MessagingSettings(organization=org)


def sendable_numbers(org: Organization) -> QuerySet[PhoneNumber]:
    """Active SMS-capable numbers of the organization's verified accounts."""
    return PhoneNumber.objects.filter(
        organization=org, is_active=True, sms_capable=True, account__status=TwilioAccount.Status.VALID
    )


def numbers_usable_by(membership: Membership) -> QuerySet[PhoneNumber]:
    """The numbers this member may send from.

    Admins may use every sendable number; agents those assigned to them or to one of their teams, or every
    sendable number when the organization allows it (``agents_may_use_any_number``). A deactivated
    membership may use none.
    """
    org = membership.organization
    base = sendable_numbers(org)
    if not membership.is_active:
        return base.none()
    if membership.is_admin:
        return base
    # The organization's "agents may use any number" is read inside the same query (always current).
    any_number = Exists(MessagingSettings.objects.filter(organization=org, agents_may_use_any_number=True))
    team_ids = membership.teams.values("pk")
    return base.filter(
        Q(any_number) | Q(assigned_members=membership) | Q(assigned_teams__in=team_ids)
    ).distinct()


def may_send_from(membership: Membership, number: PhoneNumber) -> bool:
    return numbers_usable_by(membership).filter(pk=number.pk).exists()


def org_default_number(org: Organization) -> PhoneNumber | None:
    """The organization's default sender (with its account), or None. One query."""
    default_id = MessagingSettings.objects.filter(organization=org).values("default_number_id")[:1]
    return (
        PhoneNumber.objects.select_related("account")
        .filter(organization=org, pk=Subquery(default_id))
        .first()
    )


def default_sender_for(membership: Membership) -> PhoneNumber | None:
    """The member's own default if they may still use it, else the organization's default if they may use
    it, else None (the caller asks the user to pick). One query (with the number's account); both defaults
    are read inside it."""
    own = MemberMessagingSettings.objects.filter(membership=membership, default_number=OuterRef("pk"))
    org_default = MessagingSettings.objects.filter(
        organization_id=membership.organization_id, default_number=OuterRef("pk")
    )
    return (
        numbers_usable_by(membership)
        .filter(Q(Exists(own)) | Q(Exists(org_default)))
        .annotate(is_own_default=Exists(own))
        .select_related("account")
        .order_by("-is_own_default")
        .first()
    )


def account_for_webhook(account_sid: str) -> TwilioAccount | None:
    """The account a Twilio webhook belongs to, from the ``AccountSid`` it carries (unique across
    organizations, indexed). Not tenant-scoped on purpose: the webhook is how the tenant is found. The caller
    must verify ``X-Twilio-Signature`` with this account's token before trusting anything else."""
    if not account_sid:
        return None
    return TwilioAccount.objects.select_related("organization").filter(account_sid=account_sid).first()
