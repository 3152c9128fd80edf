"""CRM pages: record lists, detail, create/edit/delete, owner reassignment, CSV import with progress, and the
record-type settings. Thin: parse, access-check, call a service, render."""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.http import HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from rest_framework.request import Request

from crm import access, imports, record_panels, services
from crm.api import report_response
from crm.filters import SORTS, filter_records, sort_ordering
from crm.forms import (
    RECORD_FORMS,
    ImportStartForm,
    ImportUploadForm,
    ReassignForm,
    RecordTypeConfigForm,
    member_users,
)
from crm.models import ImportJob, RecordType, RecordTypeConfig, model_for
from crm.phones import format_for_display
from crm.signals import owner_change_follow_up, owners_change_follow_up
from crm.texting import texting
from quicksend.bounded_ids import parse_id
from quicksend.errors import FAILED, attempt
from quicksend.pagination import CursorPagination
from tenancy.decorators import admin_required, member_required
from tenancy.models import Team

PAGE_SIZE = 50


def plural_of(record_type: str) -> str:
    return str(model_for(record_type)._meta.verbose_name_plural)


def type_tabs(current: str) -> list[dict]:
    return [
        {
            "type": rt,
            "label": plural_of(rt).capitalize(),
            "url": reverse(f"crm-{rt}-list"),
            "active": rt == current,
        }
        for rt in RecordType.values
    ]


class PagePaginator(CursorPagination):
    """The API's keyset pagination, reused for pages."""

    page_size = PAGE_SIZE

    def __init__(self, ordering):
        self.ordering = ordering

    def get_ordering(self, request, queryset, view):
        return self.ordering


def _related_names(model) -> list[str]:
    return [f.name for f in model._meta.concrete_fields if f.name in ("account", "contact")]


# --- records ---------------------------------------------------------------------------------------------


def record_list(request, record_type: str):
    model = model_for(record_type)
    qs = model.objects.filter(organization=request.org).select_related(
        "owner", "team", *_related_names(model)
    )
    filter_errors: list[str] = []
    try:
        qs = filter_records(qs, model, request.org, request.GET)
    except ValidationError as exc:
        filter_errors = exc.messages
        qs = qs.none()
    sort = request.GET.get("sort") if request.GET.get("sort") in SORTS else "newest"
    paginator = PagePaginator(sort_ordering(model, sort))
    drf_request = Request(request)
    records = paginator.paginate_queryset(qs, drf_request)
    params = request.GET.copy()
    params.pop("cursor", None)
    return render(
        request,
        "crm/record_list.html",
        {
            "record_type": record_type,
            "model": model,
            "label": model._meta.verbose_name,
            "plural": plural_of(record_type),
            "tabs": type_tabs(record_type),
            "records": records,
            "next_link": paginator.get_next_link(),
            "previous_link": paginator.get_previous_link(),
            "owners": member_users(request.org),
            "teams": Team.objects.filter(organization=request.org),
            "statuses": model.STATUS_CHOICES,
            "sorts": list(SORTS),
            "sort": sort,
            "query": params.urlencode(),
            "reassign_form": ReassignForm(org=request.org),
            "people": hasattr(model, "last_name"),
            "filter_errors": filter_errors,
        },
    )


def _display_value(record, field) -> str:
    """A field's value in words for the record page: "Yes"/"No", a choice's label, "Not set" when empty."""
    value = getattr(record, field.name)
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if value is None or value == "":
        return "Not set"
    if field.choices:
        return getattr(record, f"get_{field.name}_display")()
    if field.name in type(record).phone_fields:
        e164 = getattr(record, f"{field.name}_e164")
        return f"{value}  ({format_for_display(e164)})" if e164 else value
    return value


def record_detail(request, record_type: str, pk: int):
    record = access.access_record(request.org, record_type, pk)
    model = type(record)
    config = RecordTypeConfig.for_type(request.org.pk, record_type)
    fields = []
    for f in model._meta.concrete_fields:
        if f.name in {"id", "organization", "custom_fields", "owner", "team"} or f.name.endswith("_e164"):
            continue
        fields.append((f.verbose_name.capitalize(), _display_value(record, f)))
    related = []
    for name in ("contacts", "cases", "opportunities"):
        manager = getattr(record, name, None)
        if manager is not None:
            related.append(
                (
                    name.capitalize(),
                    name[:-1] if name != "opportunities" else "opportunity",
                    manager.all()[:20],
                )
            )
    answer = texting(record, config)
    return render(
        request,
        "crm/record_detail.html",
        {
            "record": record,
            "record_type": record_type,
            "label": model._meta.verbose_name,
            "plural": plural_of(record_type),
            "tabs": type_tabs(record_type),
            "fields": fields,
            "related": related,
            "can_text": answer.allowed,
            "cannot_text_reason": answer.reason,
            "sms_number": answer.number,
            "reassign_form": ReassignForm(org=request.org, initial={"owner": record.owner_id}),
            "may_delete": services.may_delete_record(record, request.user, request.membership),
            "panels": record_panels.panels_for(request, record),
        },
    )


def _form_page(request, record_type: str, form, record=None):
    return render(
        request,
        "crm/record_form.html",
        {
            "form": form,
            "record": record,
            "record_type": record_type,
            "label": model_for(record_type)._meta.verbose_name,
            "plural": plural_of(record_type),
            "tabs": type_tabs(record_type),
        },
    )


def record_create(request, record_type: str):
    form_class = RECORD_FORMS[record_type]
    form = form_class(request.POST or None, org=request.org, initial={"owner": request.user.pk})
    if request.method == "POST" and form.is_valid():
        record = attempt(
            form, services.do_create_record, request.org, request.user, record_type, form.cleaned_data
        )
        if record is not FAILED:
            messages.success(request, f"{record.type_label} “{record}” created.")
            return redirect(f"crm-{record_type}-detail", pk=record.pk)
    return _form_page(request, record_type, form)


def record_edit(request, record_type: str, pk: int):
    record = access.access_record(request.org, record_type, pk)
    # The form works on its own copy: the service compares old and new values.
    form = RECORD_FORMS[record_type](
        request.POST or None, org=request.org, instance=access.access_record(request.org, record_type, pk)
    )
    if request.method == "POST" and form.is_valid():
        previous_owner_id = record.owner_id
        done = attempt(form, services.do_update_record, record, request.user, form.cleaned_data)
        if done is not FAILED:
            messages.success(request, f"{record.type_label} “{record}” saved.")
            detail = reverse(f"crm-{record_type}-detail", args=[record.pk])
            return redirect(owner_change_follow_up(request, record, previous_owner_id, detail))
    return _form_page(request, record_type, form, record)


def record_delete(request, record_type: str, pk: int):
    record = access.access_record(request.org, record_type, pk)
    refusal = services.deletion_refusal(record, request.user, request.membership)
    if refusal:
        raise PermissionDenied(refusal)
    # Without "confirmed" (a browser without JavaScript skipped the dialog) the confirmation page is shown.
    if request.method == "POST" and request.POST.get("confirmed") == "yes":
        services.do_delete_record(record, request.user, membership=request.membership)
        messages.success(request, f"{record.type_label} “{record}” deleted.")
        return redirect(f"crm-{record_type}-list")
    return render(
        request,
        "crm/record_confirm_delete.html",
        {"record": record, "record_type": record_type, "tabs": type_tabs(record_type)},
    )


def record_reassign(request, record_type: str, pk: int):
    record = access.access_record(request.org, record_type, pk)
    form = ReassignForm(request.POST, org=request.org)
    detail = reverse(f"crm-{record_type}-detail", args=[record.pk])
    if form.is_valid():
        team = form.cleaned_data.get("team")
        previous_owner_id = record.owner_id
        services.do_reassign_records(
            [record], request.user, form.cleaned_data["owner"], team=team, set_team=team is not None
        )
        messages.success(request, f"{record} now belongs to {record.owner.get_full_name() or record.owner}.")
        return redirect(owner_change_follow_up(request, record, previous_owner_id, detail))
    messages.error(request, "Choose a member of this organization as the new owner.")
    return redirect(detail)


def record_bulk_reassign(request, record_type: str):
    model = model_for(record_type)
    form = ReassignForm(request.POST, org=request.org)
    try:
        ids = [parse_id(i, "ids") for i in request.POST.getlist("ids")]
    except ValidationError:
        ids = []  # a tampered id: refused below like a foreign one
    records = list(model.objects.filter(organization=request.org, pk__in=ids))
    if not form.is_valid() or not records or len(records) != len(set(ids)):
        messages.error(request, "Select records of this organization and a member as the new owner.")
    else:
        team = form.cleaned_data.get("team")
        previous_owner_ids = {r.pk: r.owner_id for r in records}
        changed = services.do_reassign_records(
            records, request.user, form.cleaned_data["owner"], team=team, set_team=team is not None
        )
        messages.success(request, f"{changed} {plural_of(record_type)} reassigned.")
        back = f"{reverse(f'crm-{record_type}-list')}?{request.POST.get('back', '')}"
        return redirect(owners_change_follow_up(request, records, previous_owner_ids, back))
    return redirect(f"{reverse(f'crm-{record_type}-list')}?{request.POST.get('back', '')}")


def _page_views(record_type: str) -> dict:
    """Views of one record type, marked with their model for the isolation harness."""
    model = model_for(record_type)
    wrapped = {
        "list": member_required(lambda request: record_list(request, record_type)),
        "create": member_required(lambda request: record_create(request, record_type)),
        "bulk_reassign": require_POST(
            member_required(lambda request: record_bulk_reassign(request, record_type))
        ),
        "detail": member_required(lambda request, pk: record_detail(request, record_type, pk)),
        "edit": member_required(lambda request, pk: record_edit(request, record_type, pk)),
        "delete": member_required(lambda request, pk: record_delete(request, record_type, pk)),
        "reassign": require_POST(
            member_required(lambda request, pk: record_reassign(request, record_type, pk))
        ),
    }
    for view in wrapped.values():
        view.isolation_model = model
    return wrapped


PAGE_VIEWS = {rt: _page_views(rt) for rt in RecordType.values}


# --- imports ---------------------------------------------------------------------------------------------


def refuse_oversize_upload(view):
    """Refuse a POST whose declared length is over the import limit before anything reads the body.

    Django's CSRF middleware reads the form body (to find the token) before any view runs, so the view is
    exempted from the middleware and runs the same CSRF check itself, after the size check.
    """

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method == "POST":
            try:
                declared = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                declared = 0
            try:
                imports.check_size(declared)
            except imports.ImportFileError as exc:
                messages.error(request, " ".join(exc.messages))
                return redirect("crm-imports")
            refused = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
            if refused is not None:
                return refused
        return view(request, *args, **kwargs)

    return csrf_exempt(wrapper)


@refuse_oversize_upload
@admin_required
def import_list(request):
    form = ImportUploadForm()
    if request.method == "POST":
        form = ImportUploadForm(request.POST, request.FILES)
        if form.is_valid():
            result = attempt(
                form,
                imports.do_create_import_job,
                request.org,
                request.user,
                form.cleaned_data["record_type"],
                form.cleaned_data["file"],
                form_field="file",
            )
            if result is not FAILED:
                job, _info = result
                return redirect("crm-import-detail", pk=job.pk)
    jobs = ImportJob.objects.filter(organization=request.org)[:20]
    return render(
        request,
        "crm/import_list.html",
        {
            "form": form,
            "jobs": jobs,
            "tabs": type_tabs(""),
            "max_mb": imports.max_bytes() // 1_048_576,
            "max_bytes": imports.max_bytes(),
        },
    )


@admin_required
def import_detail(request, pk: int):
    job = access.access_import_job(request.org, pk)
    form = None
    preview = None
    if job.status == ImportJob.Status.UPLOADED:
        form = ImportStartForm(request.POST or None, job=job)
        if request.method == "POST" and form.is_valid():
            done = attempt(
                form,
                imports.do_start_import,
                job,
                request.user,
                mapping=form.mapping(),
                duplicate_policy=form.cleaned_data["duplicate_policy"],
                match_key=form.cleaned_data["match_key"],
            )
            if done is not FAILED:
                return redirect("crm-import-detail", pk=job.pk)
        with default_storage.open(job.file.name, "rb") as fh:
            preview = imports.sniff(fh)["preview"]
    return render(
        request,
        "crm/import_detail.html",
        {"job": job, "form": form, "preview": preview, "tabs": type_tabs("")},
    )


@admin_required
def import_status(request, pk: int):
    """The progress partial, polled by htmx until the job is finished."""
    job = access.access_import_job(request.org, pk)
    return render(request, "crm/_import_status.html", {"job": job})


@admin_required
def import_report(request, pk: int):
    return report_response(access.access_import_job(request.org, pk))


for _view in (import_detail, import_status, import_report):
    _view.isolation_model = ImportJob


# --- settings --------------------------------------------------------------------------------------------


@admin_required
def settings_record_types(request):
    configs = RecordTypeConfig.all_for(request.org.pk)
    forms = [RecordTypeConfigForm(instance=c) for c in configs]
    if request.method == "POST":
        record_type = request.POST.get("record_type", "")
        if record_type not in RecordType.values:
            return HttpResponse("Unknown record type.", status=400)
        index = next(i for i, c in enumerate(configs) if c.record_type == record_type)
        form = RecordTypeConfigForm(request.POST, instance=configs[index])
        forms[index] = form
        if form.is_valid():
            done = attempt(
                form,
                services.do_save_record_type_config,
                request.org,
                request.user,
                record_type,
                **form.cleaned_data,
            )
            if done is not FAILED:
                messages.success(request, f"{RecordType(record_type).label} settings saved.")
                return redirect("crm-settings-record-types")
    return render(request, "crm/settings_record_types.html", {"forms": forms})
