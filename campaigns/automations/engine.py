"""The automation engine: enroll a record when a trigger fires, then walk its steps one at a time.

- ``enroll`` applies the guards (conditions, the re-enrollment window, the loop guard) and stores an
  ``Enrollment`` that is due at once; every skip is written to the run log with its reason.
- ``advance`` runs the due enrollment's steps, **one transaction per step** with the enrollment's row locked:
  a worker killed mid-step rolls the step back and the next wake runs it again, and a send carries the
  idempotency key ``automation-<enrollment>-<step>`` so it can never go out twice.
- A wait (a delay, a date, the recipient's sending hours, a reply) is ``status=waiting`` with ``wake_at``;
  the periodic ``claim_due`` hands due enrollments to workers with a short lease, so an enrollment whose
  task was lost is picked up again by the next tick.
- Every automated text goes through ``messaging.services.sending.do_send_message`` (opt-out, blocked,
  do-not-contact, the compliance field) and waits for the recipient's quiet hours (``campaigns.quiet_hours``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from campaigns import quiet_hours
from campaigns.automations import conditions as conds
from campaigns.automations import notify
from campaigns.automations.definition import describe_step
from campaigns.models import Automation, Enrollment, StepRun
from crm.models import CrmRecord, RecordTypeConfig, model_for
from crm.services import do_update_record
from crm.texting import texting
from messaging.access import default_sender_for
from messaging.inbox.actions import do_reassign_conversation_as_system
from messaging.models import Conversation, Message, PhoneNumber
from messaging.services.sending import SendRefused, do_send_message
from quicksend.queue import enqueue
from templates_app.models import MessageTemplate
from templates_app.services import render_template
from tenancy.models import Membership

log = logging.getLogger(__name__)

# An enrollment claimed by a worker is not claimed again for this long (its task may have been lost).
LEASE = timedelta(minutes=2)
# More enrollments of one automation for one record than this within an hour is a loop: the automation
# pauses itself.
LOOP_LIMIT = 5
MAX_ATTEMPTS = 5
# What a step returns to mean "done, go on to the next step".
NEXT = "next"


@dataclass
class Preview:
    """What a dry run found: whether it would enroll, and each step in words."""

    enrolls: bool
    reason: str = ""
    steps: list[dict] = field(default_factory=list)


def load_record(org_id: int, record_type: str, record_id: int) -> CrmRecord | None:
    if not record_type or not record_id:
        return None
    return (
        model_for(record_type)
        .objects.select_related("owner", "organization")
        .filter(organization_id=org_id, pk=record_id)
        .first()
    )


def _log(enrollment: Enrollment, index: int, step_type: str, result: str, detail: str = "", message=None):
    StepRun.objects.create(
        organization_id=enrollment.organization_id,
        enrollment=enrollment,
        automation_id=enrollment.automation_id,
        step_index=index,
        step_type=step_type,
        result=result,
        detail=detail[:500],
        message_id=getattr(message, "pk", None),
    )


# --- enrolling ---------------------------------------------------------------------------------------------


def _guard(automation: Automation, record: CrmRecord | None, phone: str, now: datetime) -> str:
    """The reason not to enroll, or ''."""
    if record is not None and not conds.matches(automation.conditions, conds.record_values(record)):
        return "Condition false"
    same = Enrollment.objects.filter(automation=automation).exclude(reason="Condition false")
    same = (
        same.filter(record_type=record.record_type, record_id=record.pk)
        if record is not None
        else same.filter(phone=phone, record_id=0)
    )
    if not automation.reenroll and same.exists():
        return "Already ran for this record"
    window = now - timedelta(hours=automation.reenroll_window_hours)
    if same.filter(created_at__gte=window).exists():
        return f"Already texted within {automation.reenroll_window_hours} hours"
    return ""


def _loop_detected(automation: Automation, record: CrmRecord | None, now: datetime) -> bool:
    if record is None:
        return False
    recent = Enrollment.objects.filter(
        automation=automation,
        record_type=record.record_type,
        record_id=record.pk,
        created_at__gte=now - timedelta(hours=1),
    ).exclude(reason="Condition false")
    return recent.count() >= LOOP_LIMIT


@transaction.atomic
def enroll(
    automation: Automation,
    *,
    record: CrmRecord | None = None,
    phone: str = "",
    trigger_key: str,
    now: datetime | None = None,
) -> Enrollment | None:
    """Enroll ``record`` (or a bare ``phone``) once for ``trigger_key``. Returns the enrollment, or None when
    this trigger already enrolled it. Skips are stored as stopped enrollments with their reason."""
    now = now or timezone.now()
    if record is not None and not phone:
        phone = texting(record).number
    base = {
        "organization_id": automation.organization_id,
        "automation": automation,
        "record_type": record.record_type if record is not None else "",
        "record_id": record.pk if record is not None else 0,
        "phone": phone,
        "trigger_key": trigger_key[:120],
    }
    if Enrollment.objects.filter(**base).exists():
        return None
    if _loop_detected(automation, record, now):
        Automation.objects.filter(pk=automation.pk).update(
            status=Automation.Status.PAUSED,
            paused_reason="Paused: it kept starting again for the same record (a loop). Check its steps.",
        )
        return None
    reason = _guard(automation, record, phone, now)
    status = Enrollment.Status.STOPPED if reason else Enrollment.Status.WAITING
    try:
        with transaction.atomic():
            enrollment = Enrollment.objects.create(
                **base, status=status, reason=reason, wake_at=None if reason else now
            )
    except IntegrityError:
        return None  # a concurrent trigger enrolled it
    if reason:
        _log(enrollment, -1, "enroll", StepRun.Result.SKIPPED, reason)
    else:
        _log(enrollment, -1, "enroll", StepRun.Result.DONE, "Enrolled")
        transaction.on_commit(lambda: enqueue("campaigns.tasks.advance_enrollment", enrollment.pk))
    return enrollment


def claim_due(now: datetime | None = None, limit: int = 500) -> list[int]:
    """Ids of the due waiting enrollments, leased for ``LEASE`` so no other tick claims them meanwhile."""
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            Enrollment.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=Enrollment.Status.WAITING, wake_at__lte=now)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
            .filter(automation__status=Automation.Status.ACTIVE)
            .order_by("wake_at")
            .values_list("pk", flat=True)[:limit]
        )
        if due:
            Enrollment.objects.filter(pk__in=due).update(claimed_until=now + LEASE)
    return due


# --- walking the steps -------------------------------------------------------------------------------------


def advance(enrollment_id: int, now: datetime | None = None) -> str:
    """Run the enrollment's due steps until it waits, stops or completes. Returns its status (or "locked"
    when another worker holds it, "not due" when its wait is not over)."""
    for _ in range(64):  # a bound: steps are finite, this only guards against a definition bug
        status = _advance_one(enrollment_id, now)
        if status != NEXT:
            return status
    return Enrollment.Status.WAITING


@transaction.atomic
def _advance_one(enrollment_id: int, now: datetime | None) -> str:
    now = now or timezone.now()
    enrollment = (
        Enrollment.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("automation", "automation__organization")
        .filter(pk=enrollment_id)
        .first()
    )
    if enrollment is None:
        return "locked"
    if enrollment.status != Enrollment.Status.WAITING:
        return enrollment.status
    if enrollment.wake_at is not None and enrollment.wake_at > now:
        return "not due"  # a late or repeated task: the wait it is in is not over
    automation = enrollment.automation
    if automation.status != Automation.Status.ACTIVE:
        return enrollment.status  # paused: it stays where it is and goes on when resumed
    steps = automation.steps
    index = enrollment.step_index
    if enrollment.reason.startswith("wait:"):
        # The wait step it was in is over.
        _log(enrollment, index, "wait", StepRun.Result.DONE, _waited(enrollment, now))
        index += 1
    enrollment.reason = ""
    enrollment.wake_at = None
    enrollment.claimed_until = None
    if index >= len(steps):
        return _finish(enrollment, index, Enrollment.Status.COMPLETED, "Completed")
    step = steps[index]
    enrollment.step_index = index
    record = load_record(enrollment.organization_id, enrollment.record_type, enrollment.record_id)
    if enrollment.record_id and record is None:
        return _finish(enrollment, index, Enrollment.Status.STOPPED, "The record was deleted")
    runner = _RUNNERS[step["type"]]
    try:
        with transaction.atomic():
            outcome = runner(enrollment, step, index, record, now)
    except Exception as exc:
        enrollment.attempts += 1
        if enrollment.attempts >= MAX_ATTEMPTS:
            log.exception("automation step failed for good: enrollment %s step %s", enrollment.pk, index)
            return _finish(enrollment, index, Enrollment.Status.FAILED, f"Failed: {exc}"[:300])
        log.warning("automation step failed, retrying: enrollment %s step %s: %s", enrollment.pk, index, exc)
        enrollment.status = Enrollment.Status.WAITING
        enrollment.wake_at = now + timedelta(minutes=2**enrollment.attempts)
        enrollment.reason = f"Retrying after an error: {exc}"[:300]
        enrollment.save()
        return enrollment.status
    if outcome == NEXT:
        # Stored as due at once: if this worker dies before the next step, the scheduler resumes it.
        enrollment.attempts = 0
        enrollment.status = Enrollment.Status.WAITING
        enrollment.wake_at = now
        enrollment.step_index = index + 1
    enrollment.save()
    return outcome


def _finish(enrollment: Enrollment, index: int, status: str, reason: str) -> str:
    enrollment.status = status
    enrollment.reason = reason
    enrollment.wake_at = None
    enrollment.step_index = index
    enrollment.save()
    if status != Enrollment.Status.COMPLETED:
        result = StepRun.Result.FAILED if status == Enrollment.Status.FAILED else StepRun.Result.STOPPED
        _log(enrollment, index, "end", result, reason)
    else:
        _log(enrollment, index, "end", StepRun.Result.DONE, reason)
    return status


def _waited(enrollment: Enrollment, now: datetime) -> str:
    if enrollment.reason == "wait:reply" and enrollment.replied_at:
        return "They replied"
    if enrollment.reason == "wait:reply":
        return "No reply in time"
    return "Waited"


def _wait(enrollment: Enrollment, index: int, until: datetime, kind: str, detail: str) -> str:
    enrollment.status = Enrollment.Status.WAITING
    enrollment.wake_at = until
    enrollment.reason = f"wait:{kind}"
    enrollment.step_index = index
    _log(enrollment, index, "wait", StepRun.Result.WAITING, detail)
    return Enrollment.Status.WAITING


def _recipient(enrollment: Enrollment, record: CrmRecord | None) -> str:
    return texting(record).number if record is not None else enrollment.phone


def _org_time_zone(enrollment: Enrollment) -> str:
    return enrollment.automation.organization.time_zone if enrollment.organization_id else "UTC"


def _latest_conversation(enrollment: Enrollment, number: str) -> Conversation | None:
    return (
        Conversation.objects.filter(organization_id=enrollment.organization_id, customer_number=number)
        .order_by("-last_message_at", "-id")
        .first()
    )


def _sender(enrollment: Enrollment, step: dict, record: CrmRecord | None):
    """The step's sender; None lets the send service choose (the number the person last texted, else the
    organization's default)."""
    choice = step.get("from", "last_conversation")
    if choice == "number":
        numbers = PhoneNumber.objects.filter(organization_id=enrollment.organization_id)
        return numbers.filter(pk=step["number"]).first()
    if choice == "owner" and record is not None and record.owner_id:
        membership = Membership.objects.filter(
            organization_id=enrollment.organization_id, user_id=record.owner_id, is_active=True
        ).first()
        return default_sender_for(membership) if membership is not None else None
    return None


def _agent(record: CrmRecord | None):
    """Who ``{{agent.*}}`` names in an automated text: the record's owner (nobody sends it by hand)."""
    return getattr(record, "owner", None) if record is not None else None


def _run_send(enrollment: Enrollment, step: dict, index: int, record, now: datetime) -> str:
    number = _recipient(enrollment, record)
    if record is not None:
        answer = texting(record, RecordTypeConfig.cached_for_type(record.organization_id, record.record_type))
        if not answer.allowed:
            return _finish(enrollment, index, Enrollment.Status.STOPPED, answer.reason)
    if not number:
        return _finish(enrollment, index, Enrollment.Status.STOPPED, "There is no number to text")
    gate = quiet_hours.opening(
        now,
        number,
        policy=enrollment.automation.quiet_hours,
        record_time_zone=quiet_hours.record_time_zone(record),
        org_time_zone=_org_time_zone(enrollment),
    )
    if not gate.allowed:
        enrollment.status = Enrollment.Status.WAITING
        enrollment.wake_at = gate.opens_at
        enrollment.reason = gate.reason
        _log(enrollment, index, step["type"], StepRun.Result.WAITING, gate.reason)
        return Enrollment.Status.WAITING
    template = MessageTemplate.objects.filter(
        organization_id=enrollment.organization_id, pk=step["template"]
    ).first()
    if template is None:
        return _finish(enrollment, index, Enrollment.Status.FAILED, "Its template was deleted")
    try:
        message = do_send_message(
            enrollment.automation.organization,
            source=Message.Source.AUTOMATION,
            record=record,
            to=None if record is not None else number,
            from_number=_sender(enrollment, step, record),
            template=template,
            agent=_agent(record),
            idempotency_key=f"automation-{enrollment.pk}-{index}",
            source_label=enrollment.automation.name,
        )
    except SendRefused as exc:
        status = Enrollment.Status.STOPPED if exc.field == "to" else Enrollment.Status.FAILED
        return _finish(enrollment, index, status, exc.message)
    _log(enrollment, index, step["type"], StepRun.Result.SENT, f"Sent “{template.name}”", message)
    return NEXT


def _date_of(value, zone: ZoneInfo) -> datetime | None:
    moment = conds.as_moment(value)
    if moment is None:
        return None
    if isinstance(moment, datetime):
        return moment if timezone.is_aware(moment) else moment.replace(tzinfo=zone)
    return datetime.combine(moment, time(9), tzinfo=zone)


def _run_wait(enrollment: Enrollment, step: dict, index: int, record, now: datetime) -> str:
    until = step["until"]
    if until == "delay":
        return _wait(
            enrollment, index, now + timedelta(minutes=step["minutes"]), "delay", describe_step(step)
        )
    if until == "reply":
        if enrollment.replied_at is not None:
            _log(enrollment, index, "wait", StepRun.Result.DONE, "They had already replied")
            return NEXT
        return _wait(
            enrollment, index, now + timedelta(minutes=step["minutes"]), "reply", describe_step(step)
        )
    number = _recipient(enrollment, record)
    if until == "business_hours":
        gate = quiet_hours.opening(
            now,
            number,
            policy=enrollment.automation.quiet_hours,
            record_time_zone=quiet_hours.record_time_zone(record),
            org_time_zone=_org_time_zone(enrollment),
        )
        if gate.allowed:
            _log(enrollment, index, "wait", StepRun.Result.DONE, "Within their sending hours")
            return NEXT
        return _wait(enrollment, index, gate.opens_at, "business_hours", gate.reason)
    zone = ZoneInfo(
        quiet_hours.recipient_time_zone(
            number,
            record_time_zone=quiet_hours.record_time_zone(record),
            org_time_zone=_org_time_zone(enrollment),
        )
    )
    value = conds.record_values(record).get(step["field"]) if record is not None else None
    when = _date_of(value, zone)
    if when is None or when <= now:
        _log(enrollment, index, "wait", StepRun.Result.SKIPPED, f"{step['field']} is empty or past")
        return NEXT
    return _wait(enrollment, index, when, "until_date", describe_step(step))


def _run_branch(enrollment: Enrollment, step: dict, index: int, record, now: datetime) -> str:
    replied = enrollment.replied_at is not None
    action = step["if_replied"] if replied else step["if_not_replied"]
    said = "They replied" if replied else "No reply"
    if action == "stop":
        return _finish(enrollment, index, Enrollment.Status.COMPLETED, f"{said}: stopped")
    _log(enrollment, index, "branch", StepRun.Result.DONE, f"{said}: continue")
    return NEXT


def _run_assign(enrollment: Enrollment, step: dict, index: int, record, now: datetime) -> str:
    number = _recipient(enrollment, record)
    conversation = _latest_conversation(enrollment, number) if number else None
    if conversation is None:
        _log(enrollment, index, "assign", StepRun.Result.SKIPPED, "No conversation with them yet")
        return NEXT
    user_id = record.owner_id if step["user"] == "owner" and record is not None else step["user"]
    if user_id in (None, "owner"):
        _log(enrollment, index, "assign", StepRun.Result.SKIPPED, "The record has no owner")
        return NEXT
    try:
        do_reassign_conversation_as_system(conversation, user_id=user_id)
    except ValidationError as exc:
        _log(enrollment, index, "assign", StepRun.Result.SKIPPED, " ".join(exc.messages))
        return NEXT
    _log(enrollment, index, "assign", StepRun.Result.DONE, "Conversation assigned")
    return NEXT


def _run_update(enrollment: Enrollment, step: dict, index: int, record, now: datetime) -> str:
    if record is None:
        _log(enrollment, index, "update_field", StepRun.Result.SKIPPED, "No record to update")
        return NEXT
    name, value = step["field"], step["value"]
    model_fields = {f.name for f in record._meta.concrete_fields}
    try:
        if name in model_fields:
            do_update_record(record, None, {name: value})
        else:
            key = name.removeprefix("custom.")
            do_update_record(record, None, {"custom_fields": {**(record.custom_fields or {}), key: value}})
    except ValidationError as exc:
        return _finish(enrollment, index, Enrollment.Status.FAILED, " ".join(exc.messages)[:300])
    _log(enrollment, index, "update_field", StepRun.Result.DONE, f"{name} set to “{value}”")
    return NEXT


def _run_notify(enrollment: Enrollment, step: dict, index: int, record, now: datetime) -> str:
    found = notify.recipients(enrollment.organization_id, step, record)
    if not found.user_ids:
        _log(enrollment, index, "notify", StepRun.Result.SKIPPED, found.reason)
        return NEXT
    automation = enrollment.automation
    text = notify.note_text(automation.name, step, record, automation.organization)
    notify.notify_members(enrollment.organization_id, found.user_ids, text, record)
    _log(enrollment, index, "notify", StepRun.Result.DONE, f"Notified {', '.join(found.names)}")
    return NEXT


_RUNNERS = {
    "send_template": _run_send,
    "wait": _run_wait,
    "branch": _run_branch,
    "assign": _run_assign,
    "update_field": _run_update,
    "notify": _run_notify,
}


# --- replies -----------------------------------------------------------------------------------------------


def note_reply(organization_id: int, customer_number: str, now: datetime | None = None) -> int:
    """A customer texted: their running enrollments remember it, and a wait for a reply ends now."""
    return note_replies(organization_id, {customer_number}, now)


def note_replies(organization_id: int, customer_numbers: set[str], now: datetime | None = None) -> int:
    """``note_reply`` for several customers of one organization: two UPDATEs whatever their number."""
    if not customer_numbers:
        return 0
    now = now or timezone.now()
    active = Enrollment.objects.filter(
        organization_id=organization_id,
        phone__in=customer_numbers,
        status=Enrollment.Status.WAITING,
    )
    active.filter(replied_at__isnull=True).update(replied_at=now)
    return active.filter(status=Enrollment.Status.WAITING, reason="wait:reply").update(wake_at=now)


# --- dry run -----------------------------------------------------------------------------------------------


def dry_run(automation: Automation, record: CrmRecord, now: datetime | None = None) -> Preview:
    """What the automation would do for ``record`` now, without writing or sending anything."""
    now = now or timezone.now()
    if not conds.matches(automation.conditions, conds.record_values(record)):
        return Preview(False, "Condition false")
    answer = texting(record)
    allowed, reason, number = answer.allowed, answer.reason, answer.number
    steps = []
    for i, step in enumerate(automation.steps):
        item = {"index": i, "type": step["type"], "summary": describe_step(step)}
        if step["type"] == "send_template":
            template = MessageTemplate.objects.filter(
                organization_id=automation.organization_id, pk=step["template"]
            ).first()
            try:
                item["text"] = (
                    render_template(template, record, sender=_agent(record)).text if template else ""
                )
            except ValidationError as exc:
                item["text"], item["would"] = "", " ".join(exc.messages)
                steps.append(item)
                continue
            item["to"] = number
            if not allowed:
                item["would"] = f"Stop: {reason}"
            elif number:
                gate = quiet_hours.opening(
                    now,
                    number,
                    policy=automation.quiet_hours,
                    record_time_zone=quiet_hours.record_time_zone(record),
                    org_time_zone=automation.organization.time_zone,
                )
                item["would"] = "Send now" if gate.allowed else gate.reason
        elif step["type"] == "notify":
            found = notify.recipients(automation.organization_id, step, record)
            item["text"] = notify.note_text(automation.name, step, record, automation.organization)
            item["would"] = (
                f"Notify {', '.join(found.names)} in the app" if found.user_ids else f"Skip: {found.reason}"
            )
        steps.append(item)
    return Preview(True, "", steps)


def due_date_enrollments(automation: Automation, now: datetime) -> list[tuple[CrmRecord, str]]:
    """Records whose date (plus the trigger's offset, at its time of day in the recipient's zone) fell in
    ``(automation.scanned_until, now]``: each with its trigger key."""
    trigger = automation.trigger
    since = automation.scanned_until or now
    offset = timedelta(minutes=trigger.get("offset_minutes", 0))
    model = model_for(trigger["record_type"])
    name = trigger["field"]
    at = trigger.get("at_time")
    # Candidates by date, with a day of slack either side for time zones; the exact instant is per record.
    low = (since - offset - timedelta(days=2)).date()
    high = (now - offset + timedelta(days=2)).date()
    model_fields = {f.name for f in model._meta.concrete_fields}
    qs = model.objects.filter(organization_id=automation.organization_id).select_related("owner")
    if name in model_fields:
        qs = qs.filter(**{f"{name}__gte": low, f"{name}__lte": high})
    else:
        key = name.removeprefix("custom.")
        qs = qs.filter(**{f"custom_fields__{key}__gte": low.isoformat()}).filter(
            **{f"custom_fields__{key}__lte": f"{high.isoformat()}~"}
        )
    found = []
    org_zone = automation.organization.time_zone
    for record in qs.iterator(chunk_size=500):
        value = conds.record_values(record).get(name)
        moment = conds.as_moment(value)
        if moment is None:
            continue
        zone = ZoneInfo(
            quiet_hours.recipient_time_zone(
                texting(record).number,
                record_time_zone=quiet_hours.record_time_zone(record),
                org_time_zone=org_zone,
            )
        )
        fire = _fire_instant(moment, offset, at, zone)
        if since < fire <= now:
            found.append((record, f"date:{name}:{moment.isoformat()}"))
    return found


def _fire_instant(moment: date | datetime, offset: timedelta, at: str | None, zone: ZoneInfo) -> datetime:
    """When a date trigger fires: the date (or datetime) plus the offset; with ``at`` ("10:00"), at that
    time of day on the resulting day, in the recipient's zone (so a DST change never shifts it)."""
    if isinstance(moment, datetime):
        base = moment if timezone.is_aware(moment) else moment.replace(tzinfo=zone)
        shifted = base.astimezone(zone) + offset
    else:
        shifted = datetime.combine(moment, time(0), tzinfo=zone) + offset
    if at:
        hours, minutes = (int(x) for x in at.split(":"))
        day = (shifted.astimezone(zone) if isinstance(moment, datetime) else shifted).date()
        return datetime.combine(day, time(hours, minutes), tzinfo=zone)
    if isinstance(moment, date) and not isinstance(moment, datetime):
        # A date with an offset in whole days keeps its wall-clock midnight across a DST change.
        day = moment + timedelta(days=offset.days)
        return datetime.combine(day, time(0), tzinfo=zone) + timedelta(seconds=offset.seconds)
    return shifted


def idle_conversations(automation: Automation, now: datetime) -> list[Conversation]:
    """Conversations whose last text is older than the trigger's hours and came from the side it waits on
    ("customer": we texted last and they have not answered; "agent": they texted last and nobody answered)."""
    trigger = automation.trigger
    cutoff = now - timedelta(hours=trigger["hours"])
    direction = "outbound" if trigger.get("waiting_on", "customer") == "customer" else "inbound"
    # A window of one scan period after the cutoff keeps old conversations from all firing on activation.
    since = (automation.scanned_until or now) - timedelta(hours=trigger["hours"])
    return list(
        Conversation.objects.filter(
            organization_id=automation.organization_id,
            last_message_direction=direction,
            last_message_at__lte=cutoff,
            last_message_at__gt=since,
        )
        .filter(~Q(status="archived"))
        .order_by("pk")[:2000]
    )
