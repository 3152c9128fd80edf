"""Demo data (``manage.py seed_demo``): "Acme Realty" is connected to the sandbox's demo account.

No HTTP here: ``make run`` seeds before the server (and the sandbox inside it) is up, so the account is
stored as verified with the sandbox's published demo credentials and numbers (``sandbox.demo``).
Idempotent: a second run changes nothing the admin set (labels, assignments, defaults are only filled in
when empty).
"""

from __future__ import annotations

import hashlib

from django.db import transaction
from django.utils import timezone

from messaging.models import MessagingSettings, PhoneNumber, TwilioAccount
from messaging.twilio.accounts import infer_number_type
from sandbox import demo as sandbox_demo

DEMO_ORG_SLUG = "acme-realty"
DEMO_LABELS = {sandbox_demo.DEMO_LOCAL_NUMBER: "Sales – SF"}
DEMO_AGENT = "agent1@acme.test"


def demo_number_sid(spec: dict) -> str:
    """The sandbox's SID for a demo number when it publishes one; else a stable stand-in (the first
    "Refresh numbers" adopts the sandbox's SID, matching by phone number)."""
    return spec.get("sid") or "PN" + hashlib.md5(spec["phone_number"].encode()).hexdigest()  # noqa: S324


@transaction.atomic
def seed_messaging_demo(sender, organization, members, stdout=None, **kwargs) -> None:
    if organization.slug != DEMO_ORG_SLUG:
        return
    account = TwilioAccount.objects.filter(account_sid=sandbox_demo.DEMO_ACCOUNT_SID).first()
    if account is not None and account.organization_id != organization.pk:
        return  # connected elsewhere by hand: leave it
    admin = next((m.user for m in members.values() if m.is_admin), None)
    now = timezone.now()
    if account is None:
        account = TwilioAccount(
            organization=organization,
            account_sid=sandbox_demo.DEMO_ACCOUNT_SID,
            friendly_name=sandbox_demo.DEMO_FRIENDLY_NAME,
            status=TwilioAccount.Status.VALID,
            twilio_status="active",
            account_type="Full",
            last_validated_at=now,
            last_validation_result="Verified: sandbox demo account (seeded by seed_demo).",
            numbers_synced_at=now,
            created_by=admin,
        )
        account.set_auth_token(sandbox_demo.DEMO_AUTH_TOKEN)
        account.save()
    for spec in sandbox_demo.DEMO_NUMBERS:
        number = PhoneNumber.objects.filter(account=account, phone_number=spec["phone_number"]).first()
        if number is None:
            number = PhoneNumber.objects.create(
                organization=organization,
                account=account,
                sid=demo_number_sid(spec),
                phone_number=spec["phone_number"],
                friendly_name=spec.get("friendly_name", ""),
                number_type=spec.get("type") or infer_number_type(spec["phone_number"]),
                sms_capable=spec.get("sms", True),
                mms_capable=spec.get("mms", False),
                voice_capable=spec.get("voice", False),
                last_synced_at=now,
                label=DEMO_LABELS.get(spec["phone_number"], ""),
            )
            if spec["phone_number"] == sandbox_demo.DEMO_LOCAL_NUMBER and DEMO_AGENT in members:
                number.assigned_members.add(members[DEMO_AGENT])
    settings_row, _ = MessagingSettings.objects.get_or_create(organization=organization)
    if settings_row.default_number_id is None:
        settings_row.default_number = PhoneNumber.objects.filter(
            account=account, phone_number=sandbox_demo.DEMO_LOCAL_NUMBER
        ).first()
        settings_row.save()
    if stdout is not None:
        stdout.write(
            f"  {organization.name}: Twilio sandbox account {account.account_sid} with its demo numbers"
        )
