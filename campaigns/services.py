"""Automation actions (admins): create, change, activate, pause, delete, run for a record. Each validates
the definition against the organization's own templates, numbers and members, and writes its audit row."""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from campaigns.automations import definition
from campaigns.automations.engine import Preview, dry_run, enroll
from campaigns.models import Automation, Enrollment
from campaigns.quiet_hours import POLICIES
from crm.models import CrmRecord
from messaging.models import PhoneNumber
from templates_app.models import MessageTemplate
from templates_app.rendering import check_body
from templates_app.services import merge_fields
from tenancy import audit
from tenancy.models import Membership, Organization, Team

EDITABLE = ("name", "trigger", "conditions", "steps", "quiet_hours", "reenroll", "reenroll_window_hours")
MAX_REENROLL_WINDOW_HOURS = 24 * 366


def _context(org: Organization) -> definition.Context:
    return definition.Context(
        # Shared, published templates: an automation speaks for the organization, not for one member.
        template_ids=set(
            MessageTemplate.objects.filter(
                organization=org, owner__isnull=True, status=MessageTemplate.Status.PUBLISHED
            ).values_list("pk", flat=True)
        ),
        number_ids=set(PhoneNumber.objects.filter(organization=org).values_list("pk", flat=True)),
        user_ids=set(
            Membership.objects.filter(organization=org, is_active=True).values_list("user_id", flat=True)
        ),
        team_ids=set(Team.objects.filter(organization=org).values_list("pk", flat=True)),
    )


def _check_notify_texts(org: Organization, trigger: dict, steps: list[dict]) -> None:
    """A notify step's merge fields must exist for the trigger's record type (any record: the agent, owner
    and organization fields only), named like a template's ("Unknown merge field {{frist_name}}: …")."""
    known = merge_fields(org, trigger.get("record_type", ""))
    for index, text in definition.notify_texts(steps):
        problems = check_body(text, known)
        if problems:
            raise ValidationError({f"steps[{index}].text": problems})


def clean_definition(org: Organization, data: dict, current: Automation | None = None) -> dict:
    """The definition fields of ``data`` checked and normalized (``current``: the automation being changed,
    for the parts ``data`` leaves as they are); ValidationError naming the part at fault."""
    ctx = _context(org)
    out = dict(data)
    try:
        if "trigger" in data:
            out["trigger"] = definition.check_trigger(data["trigger"], ctx)
        if "conditions" in data:
            out["conditions"] = definition.check_conditions(data["conditions"])
        if "steps" in data:
            out["steps"] = definition.check_steps(data["steps"], ctx)
    except definition.DefinitionError as exc:
        raise ValidationError({exc.field: exc.message})
    if "trigger" in out or "steps" in out:
        trigger = out.get("trigger", current.trigger if current is not None else {})
        steps = out.get("steps", current.steps if current is not None else [])
        _check_notify_texts(org, trigger, steps)
    if "quiet_hours" in data and data["quiet_hours"] not in POLICIES:
        raise ValidationError({"quiet_hours": f"Choose one of: {', '.join(POLICIES)}."})
    window = data.get("reenroll_window_hours")
    if window is not None and not (0 <= int(window) <= MAX_REENROLL_WINDOW_HOURS):
        raise ValidationError(
            {"reenroll_window_hours": f"Enter a number from 0 to {MAX_REENROLL_WINDOW_HOURS}."}
        )
    if "name" in data and not str(data["name"]).strip():
        raise ValidationError({"name": "Give the automation a name."})
    return out


@transaction.atomic
def do_create_automation(org: Organization, actor, **data) -> Automation:
    data = clean_definition(org, {k: v for k, v in data.items() if k in EDITABLE})
    for required in ("name", "trigger", "steps"):
        if required not in data:
            raise ValidationError({required: "This field is required."})
    automation = Automation.objects.create(
        organization=org,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
        **data,
    )
    audit.record(org, actor, "automation.created", automation, {"name": automation.name})
    return automation


@transaction.atomic
def do_update_automation(automation: Automation, actor, **data) -> Automation:
    data = clean_definition(
        automation.organization, {k: v for k, v in data.items() if k in EDITABLE}, automation
    )
    changes = {k: [getattr(automation, k), v] for k, v in data.items() if getattr(automation, k) != v}
    for name, (_old, new) in changes.items():
        setattr(automation, name, new)
    if changes:
        if "trigger" in changes:
            # A changed rule only looks forward: date and idle triggers start counting from now.
            automation.scanned_until = timezone.now()
        automation.save()
        audit.record(
            automation.organization, actor, "automation.updated", automation, {"fields": sorted(changes)}
        )
    return automation


@transaction.atomic
def do_set_automation_status(automation: Automation, actor, status: str) -> Automation:
    if status not in Automation.Status.values:
        raise ValidationError({"status": f"Choose one of: {', '.join(Automation.Status.values)}."})
    if status == automation.status:
        return automation
    if status == Automation.Status.ACTIVE:
        # Only what happens from now on fires it (a date already past never does).
        automation.scanned_until = timezone.now()
        automation.paused_reason = ""
    automation.status = status
    automation.save(update_fields=["status", "scanned_until", "paused_reason", "updated_at"])
    audit.record(automation.organization, actor, f"automation.{status}", automation)
    return automation


@transaction.atomic
def do_delete_automation(automation: Automation, actor) -> None:
    audit.record(automation.organization, actor, "automation.deleted", automation, {"name": automation.name})
    automation.delete()


def do_run_automation(automation: Automation, actor, record: CrmRecord) -> Enrollment | None:
    """Start the automation for one record now (the API's run, for outside CRMs). Guards still apply."""
    if automation.status != Automation.Status.ACTIVE:
        raise ValidationError({"status": "Activate the automation before running it."})
    enrollment = enroll(automation, record=record, trigger_key=f"run:{uuid.uuid4().hex}")
    audit.record(automation.organization, actor, "automation.run", automation, {"record": record.pk})
    return enrollment


def preview_on_record(automation: Automation, record: CrmRecord) -> Preview:
    """The dry run: what would be sent to ``record``, and when, without sending."""
    return dry_run(automation, record)
