"""Settings → Templates: the list, the editor (with an insert-field picker and a preview on a real record),
duplicate and delete. Thin: the rules are ``templates_app.services``'."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from crm.models import RecordType, model_for
from templates_app import services
from templates_app.forms import TemplateForm
from templates_app.models import MessageTemplate
from tenancy.decorators import member_required

PREVIEW_RECORDS_PER_TYPE = 25
GROUP_LABELS = {
    "record": "Record fields",
    "custom": "Custom fields",
    "agent": "You (the sender)",
    "owner": "Record owner",
    "org": "Organization",
}


@member_required
def template_list(request):
    found = services.visible_templates(request.org, request.membership).select_related("owner")
    query = request.GET.get("q", "").strip()
    found = services.search_templates(found, query)
    rows = [(t, services.can_manage(t, request.membership)) for t in found.order_by("name", "id")[:500]]
    return render(
        request,
        "templates_app/template_list.html",
        {"rows": rows, "query": query, "org_time_zone": request.org.time_zone},
    )


def _picker_groups(org, record_type: str) -> list[tuple[str, list[tuple[str, str]]]]:
    groups: dict[str, list[tuple[str, str]]] = {}
    for name, label in services.merge_fields(org, record_type).items():
        space = name.rpartition(".")[0] or "record"
        groups.setdefault(space, []).append((name, label))
    return [(GROUP_LABELS[g], groups[g]) for g in GROUP_LABELS if g in groups]


def _preview_records(org) -> list[tuple[str, str, list, str]]:
    """A few recent records of every type to preview on, and where to search for others: (type, label,
    records, the type's list API)."""
    return [
        (
            rt,
            RecordType(rt).label,
            list(model_for(rt).objects.filter(organization=org).order_by("-id")[:PREVIEW_RECORDS_PER_TYPE]),
            f"/api/v1/{model_for(rt)._meta.verbose_name_plural}",
        )
        for rt in RecordType.values
    ]


def _editor(request, form: TemplateForm, template: MessageTemplate | None):
    record_type = form["record_type"].value() or ""
    if record_type not in RecordType.values:
        record_type = ""
    return render(
        request,
        "templates_app/template_form.html",
        {
            "form": form,
            "template": template,
            "picker_groups": _picker_groups(request.org, record_type),
            "preview_records": _preview_records(request.org),
            "org_time_zone": request.org.time_zone,
        },
    )


def _save(request, form: TemplateForm, template: MessageTemplate | None):
    if not form.is_valid():
        return None
    try:
        if template is None:
            return services.do_create_template(request.org, request.membership, **form.cleaned_data)
        return services.do_update_template(template, request.membership, **form.cleaned_data)
    except ValidationError as exc:
        form.add_error(None, exc)
        return None


@member_required
def template_create(request):
    is_admin = request.membership.is_admin
    if request.method == "POST":
        form = TemplateForm(request.POST, is_admin=is_admin)
        saved = _save(request, form, None)
        if saved is not None:
            messages.success(request, f"Template “{saved.name}” created.")
            return redirect("templates-list")
    else:
        visibility = MessageTemplate.Visibility.SHARED if is_admin else MessageTemplate.Visibility.PERSONAL
        form = TemplateForm(
            initial={"visibility": visibility, "status": MessageTemplate.Status.PUBLISHED}, is_admin=is_admin
        )
    return _editor(request, form, None)


@member_required
def template_edit(request, pk: int):
    template = services.access_template(request.org, request.membership, pk)
    if not services.can_manage(template, request.membership):
        messages.error(request, "Only an admin can change a shared template. Duplicate it to make your own.")
        return redirect("templates-list")
    is_admin = request.membership.is_admin
    if request.method == "POST":
        form = TemplateForm(request.POST, is_admin=is_admin)
        saved = _save(request, form, template)
        if saved is not None:
            messages.success(request, f"Template “{saved.name}” saved.")
            return redirect("templates-list")
    else:
        form = TemplateForm(initial=TemplateForm.initial_for(template), is_admin=is_admin)
    return _editor(request, form, template)


@require_POST
@member_required
def template_duplicate(request, pk: int):
    template = services.access_template(request.org, request.membership, pk)
    copy = services.do_duplicate_template(template, request.membership)
    messages.success(request, f"“{copy.name}” is a draft copy: change it, then publish it.")
    return redirect("templates-edit", copy.pk)


@require_POST
@member_required
def template_delete(request, pk: int):
    template = services.access_template(request.org, request.membership, pk)
    services.do_delete_template(template, request.membership)
    messages.success(request, f"Template “{template.name}” deleted.")
    return redirect("templates-list")


for _view in (template_edit, template_duplicate, template_delete):
    _view.isolation_model = MessageTemplate
