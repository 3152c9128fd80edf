"""Filling a campaign's audience: a CSV file (columns mapped to the phone and merge fields), a saved filter of
CRM records, or picked records. Bad rows are reported with their reason and the rest imported. Also the
pre-flight an admin reads before starting: counts, duration at the senders' rates and windows, segments and
cost."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import date, datetime, time, timedelta

import phonenumbers
from django.conf import settings
from django.db import transaction

from campaigns.drip import dispatcher
from campaigns.drip.compose import compose
from campaigns.drip.models import Campaign, CampaignRecipient
from campaigns.drip.services import add_recipients, rows_for_records
from crm.filters import filter_records
from crm.models import RecordType, model_for
from crm.texting import try_organization_phone
from messaging.models import ConsentState
from messaging.segments import analyze
from quicksend.errors import DomainError

MAX_CSV_BYTES = 20 * 1024 * 1024
MAX_REPORTED = 1000
# US SMS price per segment (Twilio list price), for the estimate only.
DEFAULT_SEGMENT_PRICE = 0.0083

REASONS = {
    "invalid": "Not a valid phone number",
    "landline": "A landline: it cannot receive texts",
    "duplicate": "Already in the campaign or earlier in the file",
    "opted_out": "Opted out, blocked or do-not-contact",
}


def _note(campaign: Campaign, counts: Counter) -> None:
    report = dict(campaign.audience_report or {})
    for reason, count in counts.items():
        report[reason] = report.get(reason, 0) + count
    Campaign.objects.filter(pk=campaign.pk).update(audience_report=report)
    campaign.audience_report = report


def _refused(org_id: int, phones: list[str]) -> set[str]:
    states = ConsentState.objects.filter(organization_id=org_id, phone_number__in=phones)
    return {
        s.phone_number for s in states.only("phone_number", "opted_out", "blocked", "do_not_contact")
        if s.opted_out or s.blocked or s.do_not_contact
    }  # fmt: skip


def _is_landline(e164: str) -> bool:
    # Only where the numbering plan says so; US/CA numbers are "fixed line or mobile" and pass.
    parsed = phonenumbers.parse(e164, None)
    return phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.FIXED_LINE


@transaction.atomic
def import_csv(campaign: Campaign, data: bytes, *, phone_column: str, attested: bool, columns=None) -> dict:
    """Add the people of a CSV file. ``phone_column`` names the phone column; ``columns`` (default: all
    others) are kept as merge fields under their header. ``attested``: the admin confirms everyone in it
    agreed to receive these texts (required). Returns {"added", "rejected": [{row, phone, reason}],
    "counts"}."""
    if not attested:
        raise DomainError(
            "Confirm that everyone in the file agreed to receive texts from you (opt-in).", field="attested"
        )
    if len(data) > MAX_CSV_BYTES:
        raise DomainError("The file is over 20 MB: split it.", field="file")
    text = data.decode("utf-8-sig", errors="replace")
    reader = csv.DictReader(io.StringIO(text))
    headers = reader.fieldnames or []
    if phone_column not in headers:
        raise DomainError(f"The file has no column “{phone_column}”.", field="phone_column")
    keep = [c for c in (columns or headers) if c in headers and c != phone_column]
    parsed, rejected, counts = [], [], Counter()
    seen: set[str] = set()
    for number, row in enumerate(reader, start=2):  # row 1 is the header
        raw = (row.get(phone_column) or "").strip()
        e164 = try_organization_phone(campaign.organization_id, raw) if raw else None
        reason = "invalid" if e164 is None else "landline" if _is_landline(e164) else ""
        if not reason and e164 in seen:
            reason = "duplicate"
        if reason:
            counts[reason] += 1
            rejected.append({"row": number, "phone": raw[:40], "reason": REASONS[reason]})
            continue
        seen.add(e164)
        parsed.append((number, e164, {c: (row.get(c) or "")[:200] for c in keep}))
    refused = _refused(campaign.organization_id, [p for _, p, _ in parsed])
    already = set(
        CampaignRecipient.objects.filter(campaign=campaign, phone__in=[p for _, p, _ in parsed]).values_list(
            "phone", flat=True
        )
    )
    rows = []
    for number, e164, merge in parsed:
        reason = "opted_out" if e164 in refused else "duplicate" if e164 in already else ""
        if reason:
            counts[reason] += 1
            rejected.append({"row": number, "phone": e164, "reason": REASONS[reason]})
            continue
        rows.append({"phone": e164, "merge": merge})
    added = add_recipients(campaign, rows)["added"] if rows else 0
    _note(campaign, counts)
    return {"added": added, "rejected": rejected[:MAX_REPORTED], "counts": dict(counts)}


@transaction.atomic
def add_records(campaign: Campaign, records) -> dict:
    """Add picked CRM records (or a filter's). Records that may not be texted are reported."""
    rows, problems = rows_for_records(records)
    refused = _refused(campaign.organization_id, [r["phone"] for r in rows])
    counts = Counter()
    keep = []
    for row in rows:
        if row["phone"] in refused:
            counts["opted_out"] += 1
            problems.append({**row, "reason": REASONS["opted_out"]})
        else:
            keep.append(row)
    result = add_recipients(campaign, keep) if keep else {"added": 0, "duplicate": 0}
    counts["duplicate"] += result["duplicate"]
    counts["not_textable"] += len(problems) - counts["opted_out"]
    _note(campaign, Counter({k: v for k, v in counts.items() if v}))
    return {"added": result["added"], "rejected": problems[:MAX_REPORTED], "counts": dict(counts)}


def records_for_filter(org, record_type: str, params: dict):
    """The records a CRM list filter (``q``, ``owner``, ``team``, ``status``, ``phone``) selects."""
    if record_type not in (RecordType.LEAD, RecordType.CONTACT):
        raise DomainError("Campaigns text leads or contacts.", field="record_type")
    model = model_for(record_type)
    return filter_records(model.objects.filter(organization=org), model, org, params)


# --- pre-flight --------------------------------------------------------------------------------------------


def _at(value) -> datetime:
    moment = value if isinstance(value, time) else time.fromisoformat(str(value))
    return datetime.combine(date(2000, 1, 3), moment)


def _open_hours_per_week(campaign: Campaign) -> float:
    """Hours a week the campaign's window is open (on a typical recipient's clock, federal hours)."""
    start, end = _at(campaign.window_start), _at(campaign.window_end)
    law_start = datetime.combine(date(2000, 1, 3), time(8))
    law_end = datetime.combine(date(2000, 1, 3), time(21))
    if campaign.window_clock == "campaign":
        law_start, law_end = start, end  # recipients' zones differ; the campaign's own window bounds it
    hours = max(0.0, (min(end, law_end) - max(start, law_start)).total_seconds() / 3600)
    return hours * len(campaign.days_of_week or range(7))


def preflight(campaign: Campaign) -> dict:
    """Counts, estimated duration, total segments and cost before (or while) a campaign runs."""
    steps = dispatcher._steps(campaign.pk)
    step_segments = [dispatcher.step_segments(steps, i) for i in range(len(steps))]
    people = CampaignRecipient.objects.filter(campaign=campaign)
    refused = set(
        ConsentState.objects.filter(
            organization_id=campaign.organization_id, phone_number__in=people.values("phone"), opted_out=True
        ).values_list("phone_number", flat=True)
    )
    counts = Counter()
    segments_by_sender: Counter = Counter()
    total_segments = 0
    for person in (
        people.filter(status__in=CampaignRecipient.ACTIVE)
        .only("phone", "merge", "sender_id", "step_index", "record_type", "record_id")
        .iterator(chunk_size=2000)
    ):
        if person.phone in refused:
            counts["opted_out"] += 1
            continue
        missing = False
        if not person.record_id:
            for step in steps:
                if compose(step.body, merge=person.merge).missing:
                    missing = True
                    break
        if missing:
            counts["missing_merge_field"] += 1
        counts["sendable"] += 1
        cost = sum(step_segments[person.step_index :])
        total_segments += cost
        segments_by_sender[person.sender_id] += cost
    report = campaign.audience_report or {}
    numbers = list(campaign.senders.all())
    rates = dispatcher.sender_rates(numbers)
    send_seconds = max(
        (segs / rates.get(sender, 1.0) for sender, segs in segments_by_sender.items() if sender), default=0.0
    )
    open_hours = _open_hours_per_week(campaign)
    waits = sum(s.wait_minutes for s in steps[1:]) * 60
    if open_hours <= 0:
        duration = None
    else:
        duration = send_seconds * (7 * 24 / open_hours) + waits
    price = float(getattr(settings, "QUICKSEND_SEGMENT_PRICE", DEFAULT_SEGMENT_PRICE))
    return {
        "sendable": counts["sendable"],
        "invalid": report.get("invalid", 0),
        "landline": report.get("landline", 0),
        "opted_out": counts["opted_out"] + report.get("opted_out", 0),
        "duplicate": report.get("duplicate", 0),
        "missing_merge_field": counts["missing_merge_field"],
        "total_segments": total_segments,
        "estimated_seconds": round(duration) if duration is not None else None,
        "estimated_cost": round(total_segments * price, 2),
        "currency": "USD",
        "segments_per_step": step_segments,
        "sender_rates": {str(k): v for k, v in rates.items()},
        "first_message": analyze(steps[0].body).segments if steps else 0,
    }


def duration_words(seconds: int | None) -> str:
    if seconds is None:
        return "Never: the sending window is never open"
    delta = timedelta(seconds=seconds)
    if delta < timedelta(minutes=1):
        return "Under a minute"
    if delta < timedelta(hours=1):
        return f"About {round(seconds / 60)} minutes"
    if delta < timedelta(days=2):
        return f"About {seconds / 3600:.1f} hours"
    return f"About {seconds / 86400:.1f} days"
