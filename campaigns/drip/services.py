"""Campaign actions: create and change, fill the audience, start, pause, resume, cancel, and what a reply
or an opt-out does to the people still to be texted. Each action validates, writes its audit row and
raises ``DomainError`` in plain words."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from campaigns import quiet_hours
from campaigns.drip.models import Campaign, CampaignMedia, CampaignRecipient, CampaignStep
from crm.models import CrmRecord
from crm.texting import texting
from messaging.media.validation import MAX_ITEMS as MAX_MEDIA_ITEMS
from messaging.media.validation import MAX_TOTAL_BYTES as MAX_MEDIA_BYTES
from messaging.media.validation import MediaError, MediaFile, validate_media
from messaging.models import Conversation, PhoneNumber
from messaging.segments import MAX_BODY_CHARACTERS
from messaging.services.sending import safe_media_name
from quicksend.errors import DomainError
from tenancy import audit
from tenancy.models import Organization

MAX_STEPS = 10
SETTINGS = (
    "name",
    "start_at",
    "window_clock",
    "time_zone",
    "window_start",
    "window_end",
    "days_of_week",
    "quiet_hours",
    "stop_on_reply",
    "batch_size",
    "batch_minutes",
    "brand_name",
)
Status = Campaign.Status


def _as_time(value, field: str) -> time:
    if isinstance(value, time):
        return value
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise DomainError("Give a time like 09:00.", field=field) from None


def _check_settings(values: dict) -> dict:
    out = {k: v for k, v in values.items() if k in SETTINGS}
    if "name" in out and not str(out["name"]).strip():
        raise DomainError("Give the campaign a name.", field="name")
    if "time_zone" in out:
        try:
            ZoneInfo(str(out["time_zone"]))
        except (ZoneInfoNotFoundError, ValueError):
            raise DomainError("Choose a time zone like America/New_York.", field="time_zone") from None
    for name in ("window_start", "window_end"):
        if name in out:
            out[name] = _as_time(out[name], name)
    if "days_of_week" in out:
        days = out["days_of_week"]
        if not isinstance(days, list) or not days or any(d not in range(7) for d in days):
            raise DomainError("Choose at least one day (0 = Monday … 6 = Sunday).", field="days_of_week")
        out["days_of_week"] = sorted(set(days))
    if "quiet_hours" in out and out["quiet_hours"] not in quiet_hours.POLICIES:
        raise DomainError("Quiet hours are federal or strict.", field="quiet_hours")
    if "window_clock" in out and out["window_clock"] not in Campaign.WindowClock.values:
        raise DomainError("The window follows the recipient's clock or the campaign's.", field="window_clock")
    return out


def _check_window(campaign: Campaign) -> None:
    if _as_time(campaign.window_start, "window_start") >= _as_time(campaign.window_end, "window_end"):
        raise DomainError("The sending window must end after it starts.", field="window_end")
    if bool(campaign.batch_size) != bool(campaign.batch_minutes):
        raise DomainError("Batch mode needs both a number of texts and minutes.", field="batch_size")


def _senders(org: Organization, ids: Iterable) -> list[PhoneNumber]:
    ids = list(ids or [])
    numbers = list(PhoneNumber.objects.filter(organization=org, pk__in=ids))
    if not ids or len(numbers) != len(set(ids)):
        raise DomainError("Choose one or more of your organization's numbers to send from.", field="senders")
    for number in numbers:
        if not number.can_send_sms:
            raise DomainError(f"{number.display_name} cannot send text messages.", field="senders")
    return numbers


def store_media(org: Organization, actor, upload: MediaFile) -> CampaignMedia:
    """Check a picture or file for campaign steps (what an MMS may carry) and store it once."""
    try:
        checked = validate_media([upload])[0]
    except MediaError as error:
        raise DomainError(" ".join(error.messages), field="file") from None
    item = CampaignMedia(
        organization=org,
        filename=(upload.name or "attachment")[:200],
        content_type=checked.content_type,
        size=checked.size,
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    item.file.save(
        safe_media_name(upload.name or "", checked.content_type), ContentFile(upload.data), save=False
    )
    item.save()
    audit.record(org, actor, "campaign.media_added", item, {"filename": item.filename, "size": item.size})
    return item


def _step_media(campaign: Campaign, index: int, ids) -> list[int]:
    """A step's attachments: media of this organization, at most what one MMS may carry."""
    field = f"steps[{index}].media"
    if not ids:
        return []
    if not isinstance(ids, list) or not all(isinstance(i, int) and i > 0 for i in ids):
        raise DomainError("Attachments are a list of media ids.", field=field)
    found = {
        m.pk: m for m in CampaignMedia.objects.filter(organization_id=campaign.organization_id, pk__in=ids)
    }
    if missing := [i for i in ids if i not in found]:
        raise DomainError(f"Step {index + 1}: no attachment with id {missing[0]}.", field=field)
    if len(ids) > MAX_MEDIA_ITEMS:
        raise DomainError(f"Step {index + 1} can carry at most {MAX_MEDIA_ITEMS} attachments.", field=field)
    if sum(found[i].size for i in ids) > MAX_MEDIA_BYTES:
        raise DomainError(
            f"Step {index + 1}: attachments can add up to at most {MAX_MEDIA_BYTES // 1_000_000} MB.",
            field=field,
        )
    return list(ids)


def _set_steps(campaign: Campaign, steps: list[dict]) -> None:
    if not isinstance(steps, list) or not 1 <= len(steps) <= MAX_STEPS:
        raise DomainError(f"A campaign has 1 to {MAX_STEPS} steps.", field="steps")
    rows = []
    for index, step in enumerate(steps):
        body = str((step or {}).get("body") or "")
        if not body.strip():
            raise DomainError(f"Step {index + 1} has no text.", field=f"steps[{index}].body")
        if len(body) > MAX_BODY_CHARACTERS - 30:
            raise DomainError(f"Step {index + 1} is too long.", field=f"steps[{index}].body")
        wait = int((step or {}).get("wait_minutes") or 0)
        if wait < 0 or wait > 60 * 24 * 365:
            raise DomainError("A wait is 0 minutes to a year.", field=f"steps[{index}].wait_minutes")
        rows.append(
            CampaignStep(
                organization_id=campaign.organization_id,
                campaign=campaign,
                position=index,
                body=body,
                media=_step_media(campaign, index, (step or {}).get("media")),
                wait_minutes=0 if index == 0 else wait,
            )
        )
    CampaignStep.objects.filter(campaign=campaign).delete()
    CampaignStep.objects.bulk_create(rows)


@transaction.atomic
def do_create_campaign(org: Organization, actor, *, senders, steps, **values) -> Campaign:
    """A draft campaign with its senders and steps."""
    checked = _check_settings(values)
    if "name" not in checked:
        raise DomainError("Give the campaign a name.", field="name")
    numbers = _senders(org, senders)
    campaign = Campaign(organization=org, created_by=actor if getattr(actor, "pk", None) else None, **checked)
    _check_window(campaign)
    campaign.save()
    campaign.senders.set(numbers)
    _set_steps(campaign, steps)
    audit.record(org, actor, "campaign.created", campaign, {"name": campaign.name})
    return campaign


@transaction.atomic
def do_update_campaign(campaign: Campaign, actor, *, senders=None, steps=None, **values) -> Campaign:
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status in (Status.COMPLETED, Status.CANCELED):
        raise DomainError("A finished campaign cannot be changed.", http_status=409)
    checked = _check_settings(values)
    for name, value in checked.items():
        setattr(campaign, name, value)
    _check_window(campaign)
    campaign.save()
    if senders is not None:
        campaign.senders.set(_senders(campaign.organization, senders))
    if steps is not None:
        if campaign.status not in (Status.DRAFT, Status.SCHEDULED):
            raise DomainError("Steps can be changed only before the campaign starts.", field="steps")
        _set_steps(campaign, steps)
    audit.record(campaign.organization, actor, "campaign.updated", campaign, {"fields": sorted(checked)})
    return campaign


# --- the audience ------------------------------------------------------------------------------------------


def _pool(campaign: Campaign) -> list[PhoneNumber]:
    return list(campaign.senders.filter(is_active=True, sms_capable=True).order_by("pk"))


@transaction.atomic
def add_recipients(campaign: Campaign, rows: list[dict]) -> dict:
    """Add people (dicts with ``phone`` in E.164 and optional ``record_type``, ``record_id``, ``merge``,
    ``time_zone``: the record's own zone, used when the number's area does not tell one).
    Each gets a sticky sender: the pool number they already have a conversation with, else the pool in
    turn. Returns ``{"added": n, "duplicate": n}`` (duplicates: already in the campaign)."""
    if campaign.status in (Status.COMPLETED, Status.CANCELED):
        raise DomainError("A finished campaign takes no new people.", http_status=409)
    pool = _pool(campaign)
    if not pool:
        raise DomainError("The campaign has no number able to send.", field="senders")
    phones = list(dict.fromkeys(r["phone"] for r in rows))
    known = dict(
        Conversation.objects.filter(
            organization_id=campaign.organization_id,
            customer_number__in=phones,
            phone_number__in=[n.pk for n in pool],
        ).values_list("customer_number", "phone_number_id")
    )
    already = set(
        CampaignRecipient.objects.filter(campaign=campaign, phone__in=phones).values_list("phone", flat=True)
    )
    turn = CampaignRecipient.objects.filter(campaign=campaign).count()
    org_zone = getattr(campaign.organization, "time_zone", "") or "UTC"
    new, seen = [], set()
    now = timezone.now()
    for row in rows:
        phone = row["phone"]
        if phone in already or phone in seen:
            continue
        seen.add(phone)
        sender_id = known.get(phone) or pool[turn % len(pool)].pk
        turn += 1
        new.append(
            CampaignRecipient(
                organization_id=campaign.organization_id,
                campaign=campaign,
                phone=phone,
                record_type=row.get("record_type") or "",
                record_id=row.get("record_id"),
                merge=row.get("merge") or {},
                sender_id=sender_id,
                time_zone=quiet_hours.recipient_time_zone(
                    phone, record_time_zone=row.get("time_zone") or "", org_time_zone=org_zone
                ),
                state=quiet_hours.us_state(phone) or "",
                next_at=(campaign.start_at or now) if campaign.status == Status.RUNNING else None,
            )
        )
    CampaignRecipient.objects.bulk_create(new, batch_size=1000, ignore_conflicts=True)
    return {"added": len(new), "duplicate": len(rows) - len(new)}


def rows_for_records(records: Iterable[CrmRecord]) -> tuple[list[dict], list[dict]]:
    """(rows to add, problems) for CRM records: a record that may not be texted is a problem with its
    reason."""
    rows, problems = [], []
    for record in records:
        answer = texting(record)
        if not answer.allowed:
            problems.append(
                {"record_type": record.record_type, "record_id": record.pk, "reason": answer.reason}
            )
            continue
        rows.append(
            {
                "phone": answer.number,
                "record_type": record.record_type,
                "record_id": record.pk,
                "time_zone": quiet_hours.record_time_zone(record),
            }
        )
    return rows, problems


# --- controls ----------------------------------------------------------------------------------------------


def _locked(campaign: Campaign) -> Campaign:
    return Campaign.objects.select_for_update().get(pk=campaign.pk)


@transaction.atomic
def do_start_campaign(campaign: Campaign, actor, *, at: datetime | None = None) -> Campaign:
    """Start now, or at ``at`` (the dispatcher starts it then)."""
    campaign = _locked(campaign)
    if campaign.status not in (Status.DRAFT, Status.SCHEDULED):
        raise DomainError("Only a draft or scheduled campaign can be started.", http_status=409)
    if not CampaignStep.objects.filter(campaign=campaign).exists():
        raise DomainError("Add a step first.", field="steps")
    if not CampaignRecipient.objects.filter(campaign=campaign).exists():
        raise DomainError("Add people to the campaign first.", field="recipients")
    now = timezone.now()
    starts = at if at and at > now else now
    campaign.start_at = starts
    campaign.status = Status.SCHEDULED if starts > now else Status.RUNNING
    campaign.started_at = None if starts > now else now
    campaign.save()
    pool = _pool(campaign)
    pool_ids = [n.pk for n in pool]
    if not pool_ids:
        raise DomainError("The campaign has no number able to send.", field="senders")
    with_media = any(step.media for step in CampaignStep.objects.filter(campaign=campaign))
    if with_media and (no_mms := [n.display_name for n in pool if not n.mms_capable]):
        raise DomainError(
            f"A step sends a picture or file, and {', '.join(no_mms)} cannot send them (not MMS-capable): "
            "remove the attachments or those numbers.",
            field="senders",
        )
    CampaignRecipient.objects.filter(campaign=campaign, status=CampaignRecipient.Status.PENDING).update(
        next_at=starts
    )
    # People whose number left the pool get one that is in it (their conversation moves with it).
    stray = CampaignRecipient.objects.filter(campaign=campaign).exclude(sender_id__in=pool_ids)
    for i, pk in enumerate(stray.values_list("pk", flat=True)):
        CampaignRecipient.objects.filter(pk=pk).update(sender_id=pool_ids[i % len(pool_ids)])
    audit.record(campaign.organization, actor, "campaign.started", campaign, {"at": starts.isoformat()})
    return campaign


def _move(campaign: Campaign, actor, allowed: tuple, to: str, action: str) -> Campaign:
    campaign = _locked(campaign)
    if campaign.status not in allowed:
        raise DomainError(
            f"A {campaign.get_status_display().lower()} campaign cannot be {action}.", http_status=409
        )
    campaign.status = to
    if to == Status.CANCELED:
        campaign.finished_at = timezone.now()
        CampaignRecipient.objects.filter(campaign=campaign, status__in=CampaignRecipient.ACTIVE).update(
            status=CampaignRecipient.Status.CANCELED, next_at=None, claimed_until=None
        )
    campaign.save()
    audit.record(campaign.organization, actor, f"campaign.{action}", campaign, {})
    return campaign


@transaction.atomic
def do_pause_campaign(campaign: Campaign, actor) -> Campaign:
    return _move(campaign, actor, (Status.RUNNING, Status.SCHEDULED), Status.PAUSED, "paused")


@transaction.atomic
def do_resume_campaign(campaign: Campaign, actor) -> Campaign:
    return _move(campaign, actor, (Status.PAUSED,), Status.RUNNING, "resumed")


@transaction.atomic
def do_cancel_campaign(campaign: Campaign, actor) -> Campaign:
    return _move(
        campaign,
        actor,
        (Status.DRAFT, Status.SCHEDULED, Status.RUNNING, Status.PAUSED),
        Status.CANCELED,
        "canceled",
    )


# --- what people do ----------------------------------------------------------------------------------------


def note_reply(organization_id: int, phone: str, now: datetime | None = None) -> int:
    """A person texted us: they stop in every live campaign that stops on a reply. Returns how many."""
    return note_replies(organization_id, {phone}, now)


def note_replies(organization_id: int, phones: set[str], now: datetime | None = None) -> int:
    """``note_reply`` for several people of one organization, in one UPDATE."""
    if not phones:
        return 0
    return CampaignRecipient.objects.filter(
        organization_id=organization_id,
        phone__in=phones,
        status__in=CampaignRecipient.ACTIVE,
        campaign__stop_on_reply=True,
        step_index__gt=0,
    ).update(status=CampaignRecipient.Status.REPLIED, replied_at=now or timezone.now(), next_at=None)


def note_opt_out(organization_id: int, phone: str) -> int:
    """A person opted out: no campaign texts them again (the send path also refuses at send time)."""
    return CampaignRecipient.objects.filter(
        organization_id=organization_id, phone=phone, status__in=CampaignRecipient.ACTIVE
    ).update(status=CampaignRecipient.Status.OPTED_OUT, next_at=None, error="Opted out")
