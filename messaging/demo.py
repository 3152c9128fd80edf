"""Demo data (``manage.py seed_demo``): "Acme Realty" is connected to the sandbox's demo account.

No HTTP here: ``make run`` seeds before the server (and the sandbox inside it) is up, so the account is
stored as verified with the sandbox's published demo credentials and numbers (``sandbox.demo``).
Idempotent: a second run changes nothing the admin set (labels, assignments, defaults are only filled in
when empty).

A few conversations make a fresh inbox worth opening (``DEMO_CONVERSATIONS``): an unread reply from a lead,
a thread an automation started, a text Twilio could not deliver (with its reason) and a first text from a
stranger to accept. They are stored the one way every message is (``record_message``), so sessions, unread
counts and notifications follow as for real texts; each message has a stable SID, so a second run adds
nothing. Nothing is sent: these texts are history.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from messaging.inbox.conversations import get_or_create_conversation, record_message
from messaging.models import (
    STATUS_RANK,
    Message,
    MessageStatus,
    MessagingSettings,
    PhoneNumber,
    TwilioAccount,
)
from messaging.twilio.accounts import infer_number_type
from messaging.twilio.errors import describe_code
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
    local = PhoneNumber.objects.filter(account=account, phone_number=sandbox_demo.DEMO_LOCAL_NUMBER).first()
    added = seed_demo_conversations(organization, members, local) if local is not None else 0
    if stdout is not None:
        stdout.write(
            f"  {organization.name}: Twilio sandbox account {account.account_sid} with its demo numbers"
            + (f", {added} demo texts" if added else "")
        )


# (customer number, record (type, external id) or None, owner's email or None, texts). A text:
# (minutes ago, "in" or "out", body, sender's email or an automation's name, status, Twilio error code).
DEMO_CONVERSATIONS = [
    (
        "+14155550134",  # Maria Lopez, a lead of Aaron's: her last reply is unread
        ("lead", "demo-lead-1"),
        "agent1@acme.test",
        [
            (26 * 60, "in", "Hi! Is the 2-bedroom on Elm St still available?", None, "received", None),
            (
                26 * 60 - 12,
                "out",
                "Hi Maria, it is! Would Saturday at 10 work for a viewing?",
                "agent1@acme.test",
                "delivered",
                None,
            ),
            (45, "in", "Saturday at 10 works. Can I bring my dog? 🐕", None, "received", None),
        ],
    ),
    (
        "+14155550135",  # Chen Wei, a lead of Amy's: an automation wrote first
        ("lead", "demo-lead-2"),
        "agent2@acme.test",
        [
            (
                3 * 24 * 60,
                "out",
                "Thanks for visiting our open house on Maple St, Chen! Reply here with any questions.",
                "automation:Open house follow-up",
                "delivered",
                None,
            ),
            (3 * 24 * 60 - 30, "in", "Thanks! What is the HOA fee?", None, "received", None),
            (
                3 * 24 * 60 - 20,
                "out",
                "It's $320 a month, water and trash included.",
                "agent2@acme.test",
                "delivered",
                None,
            ),
        ],
    ),
    (
        "+16175550150",  # Justin Reed, a contact of Aaron's: the last text was not delivered
        ("contact", "demo-con-1"),
        "agent1@acme.test",
        [
            (
                5 * 60,
                "out",
                "Justin, the inspection report for Harbor View is ready. Shall I email it?",
                "agent1@acme.test",
                "undelivered",
                30003,
            ),
        ],
    ),
    (
        "+14155550177",  # nobody we know: a first text for someone to accept
        None,
        None,
        [
            (
                12,
                "in",
                "Hello, I saw your sign on Oak Ave. Is the house still for sale?",
                None,
                "received",
                None,
            )
        ],
    ),
]


def _demo_sid(customer: str, index: int) -> str:
    return "SM" + hashlib.md5(f"demo:{customer}:{index}".encode()).hexdigest()  # noqa: S324


def seed_demo_conversations(organization, members, number: PhoneNumber) -> int:
    """Store ``DEMO_CONVERSATIONS`` on ``number`` (texts already stored are skipped); returns how many texts
    were added."""
    from crm.models import model_for

    users = {email: m.user for email, m in members.items()}
    now = timezone.now()
    added = 0
    for customer, record_ref, owner_email, texts in DEMO_CONVERSATIONS:
        sids = [_demo_sid(customer, i) for i in range(len(texts))]
        known = set(Message.objects.filter(sid__in=sids).values_list("sid", flat=True))
        if len(known) == len(sids):
            continue
        defaults = {}
        if record_ref is not None:
            record = (
                model_for(record_ref[0])
                .objects.filter(organization=organization, external_id=record_ref[1])
                .first()
            )
            if record is not None:
                defaults.update(record_type=record_ref[0], record_id=record.pk)
        if owner_email in users:
            defaults["owner"] = users[owner_email]
        conversation, _created = get_or_create_conversation(number, customer, **defaults)
        for sid, (minutes_ago, direction, body, who, status, error_code) in zip(sids, texts, strict=True):
            if sid in known:
                continue
            fields = {
                "account_id": number.account_id,
                "sid": sid,
                "body": body,
                "status": status,
                "status_rank": STATUS_RANK.get(status, 0),
            }
            if direction == "in":
                fields.update(
                    direction=Message.Direction.INBOUND,
                    source=Message.Source.CUSTOMER,
                    from_number=customer,
                    to_number=number.phone_number,
                )
            else:
                fields.update(
                    direction=Message.Direction.OUTBOUND,
                    from_number=number.phone_number,
                    to_number=customer,
                    num_segments=1,
                )
                if who and who.startswith("automation:"):
                    fields.update(source=Message.Source.AUTOMATION, source_label=who.split(":", 1)[1])
                else:
                    fields.update(source=Message.Source.API, sender=users.get(who))
                if error_code:
                    fields.update(error_code=error_code, error_message=describe_code(error_code))
                if status == MessageStatus.DELIVERED:
                    fields["delivered_at"] = now - timedelta(minutes=minutes_ago - 1)
                elif status in (MessageStatus.FAILED, MessageStatus.UNDELIVERED):
                    fields["failed_at"] = now - timedelta(minutes=minutes_ago - 1)
            record_message(conversation, happened_at=now - timedelta(minutes=minutes_ago), **fields)
            added += 1
    return added
