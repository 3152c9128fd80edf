"""Settings → Automations (admins): the list, the builder, and an automation's run log.

The builder page is a form the browser turns into the API's JSON (campaigns/static/campaigns/
automation_builder.js): the page hands it the definition and what it may choose from (templates, numbers,
members, record types and their fields); saving goes through ``/api/v1/automations``, so the page and
integrators share one set of rules and error messages.
"""

from __future__ import annotations

from django.db.models import Count, Q
from django.shortcuts import render
from django.urls import reverse

from campaigns.automations.definition import OPERATORS, STEP_TYPES, TRIGGERS, describe_step
from campaigns.models import Automation, Enrollment, StepRun
from crm.models import RecordType, model_for
from messaging.models import PhoneNumber
from templates_app.models import MessageTemplate
from tenancy.access import get_in_org
from tenancy.decorators import admin_required
from tenancy.models import Membership, Team

RUN_LOG_SIZE = 100


def _record_fields() -> dict[str, list[str]]:
    hidden = {"id", "organization", "custom_fields", "created_at", "updated_at"}
    out = {}
    for record_type in RecordType.values:
        model = model_for(record_type)
        out[record_type] = [
            f.name
            for f in model._meta.concrete_fields
            if f.name not in hidden and not f.name.endswith("_e164")
        ]
    return out


def _choices(org) -> dict:
    return {
        "triggers": TRIGGERS,
        "operators": OPERATORS,
        "step_types": STEP_TYPES,
        "record_types": dict(RecordType.choices),
        "record_fields": _record_fields(),
        "templates": [
            {"id": t.pk, "name": t.name, "record_type": t.record_type}
            for t in MessageTemplate.objects.filter(
                organization=org, owner__isnull=True, status=MessageTemplate.Status.PUBLISHED
            ).order_by("name")
        ],
        "numbers": [
            {"id": n.pk, "name": n.display_name}
            for n in PhoneNumber.objects.filter(organization=org, is_active=True).order_by("phone_number")
        ],
        "members": [
            {"id": m.user_id, "name": m.user.get_full_name() or m.user.email}
            for m in Membership.objects.filter(organization=org, is_active=True).select_related("user")
        ],
        "teams": [
            {"id": t.pk, "name": t.name} for t in Team.objects.filter(organization=org).order_by("name")
        ],
        "search_urls": {rt: f"/api/v1/{model_for(rt)._meta.verbose_name_plural}" for rt in RecordType.values},
    }


def _trigger_words(trigger: dict) -> str:
    words = TRIGGERS.get(trigger.get("type"), trigger.get("type", ""))
    if trigger.get("record_type"):
        words += f" ({RecordType(trigger['record_type']).label.lower()})"
    return words


@admin_required
def automation_list(request):
    counts = {
        f"n_{s}": Count("enrollments", filter=Q(enrollments__status=s)) for s in Enrollment.Status.values
    }
    automations = (
        Automation.objects.filter(organization=request.org).annotate(**counts).order_by("name", "id")
    )
    rows = [{"automation": a, "trigger": _trigger_words(a.trigger)} for a in automations]
    return render(request, "campaigns/automation_list.html", {"rows": rows})


@admin_required
def automation_edit(request, pk: int | None = None):
    automation = get_in_org(Automation.objects.all(), request.org, pk) if pk is not None else None
    data = None
    if automation is not None:
        data = {
            "id": automation.pk,
            "name": automation.name,
            "status": automation.status,
            "trigger": automation.trigger,
            "conditions": automation.conditions,
            "steps": automation.steps,
            "quiet_hours": automation.quiet_hours,
            "reenroll": automation.reenroll,
            "reenroll_window_hours": automation.reenroll_window_hours,
        }
    context = {"automation": automation, "data": data, "choices": _choices(request.org)}
    if automation is not None:
        context.update(_run_log(request, automation))
    return render(request, "campaigns/automation_edit.html", context)


def _record_url(enrollment: Enrollment) -> str:
    if not enrollment.record_id or enrollment.record_type not in RecordType.values:
        return ""
    return reverse(f"crm-{enrollment.record_type}-detail", args=[enrollment.record_id])


def _run_log(request, automation: Automation) -> dict:
    result = request.GET.get("result", "")
    runs = StepRun.objects.filter(organization=request.org, automation=automation).select_related(
        "enrollment"
    )
    if result in StepRun.Result.values:
        runs = runs.filter(result=result)
    counts = dict(
        Enrollment.objects.filter(automation=automation).values_list("status").annotate(n=Count("id"))
    )
    steps = {i: describe_step(s) for i, s in enumerate(automation.steps)}
    entries = [
        {
            "run": r,
            "step": "Enrollment" if r.step_index < 0 else steps.get(r.step_index, r.step_type),
            "url": _record_url(r.enrollment),
        }
        for r in runs.order_by("-id")[:RUN_LOG_SIZE]
    ]
    errors = StepRun.objects.filter(automation=automation, result=StepRun.Result.FAILED).order_by("-id")[:5]
    return {
        "entries": entries,
        "counts": [(label, counts.get(value, 0)) for value, label in Enrollment.Status.choices],
        "results": StepRun.Result.choices,
        "result": result,
        "errors": errors,
    }
