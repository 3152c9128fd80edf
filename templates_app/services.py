"""Template actions and who may do them. Each action writes its audit row.

The rules, in one place (pages and the API both call these):
- a shared template (no owner) is created, changed, duplicated as shared and deleted by admins only; agents
  see it (and may send it) only once it is published;
- a personal template belongs to one member, admin or agent: only they see it, change it or delete it;
- anyone who sees a template may duplicate it; an agent's copy of a shared template is personal.
Bodies are checked on every save: an unknown or malformed merge field is refused, naming it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from crm.custom_fields import custom_field_keys
from crm.models import CrmRecord, RecordType
from templates_app.models import SHORTCODE_RE, MessageTemplate
from templates_app.rendering import RenderResult, check_body, fields_for, render
from tenancy import audit
from tenancy.models import Membership, Organization

MAX_BODY = 1600  # what one message may carry (the send refuses longer bodies)
EDITABLE = ("name", "body", "record_type", "status", "shortcode", "visibility")
Shared, Personal = MessageTemplate.Visibility.SHARED, MessageTemplate.Visibility.PERSONAL


def visible_templates(org: Organization, membership: Membership) -> QuerySet[MessageTemplate]:
    """The templates this member may see: shared ones (agents: published only) and their own personal ones."""
    shared = Q(owner__isnull=True)
    if not membership.is_admin:
        shared &= Q(status=MessageTemplate.Status.PUBLISHED)
    return MessageTemplate.objects.filter(Q(organization=org) & (shared | Q(owner_id=membership.user_id)))


def usable_templates(org: Organization, membership: Membership, record_type: str = "") -> QuerySet:
    """What the composer offers: visible, published, and for any record or ``record_type``."""
    found = visible_templates(org, membership).filter(status=MessageTemplate.Status.PUBLISHED)
    if record_type:
        found = found.filter(record_type__in=["", record_type])
    return found


def search_templates(found: QuerySet[MessageTemplate], text: str) -> QuerySet[MessageTemplate]:
    """Templates whose name or body contains ``text``, or whose short code starts with it ("/wel")."""
    term = (text or "").strip().lstrip("/")
    if not term:
        return found
    return found.filter(Q(name__icontains=term) | Q(shortcode__istartswith=term) | Q(body__icontains=term))


def access_template(org: Organization, membership: Membership, pk) -> MessageTemplate:
    """One template this member may see; 404 otherwise (missing, another organization's, someone's personal
    template, a draft for an agent)."""
    from tenancy.access import get_in_org

    return get_in_org(visible_templates(org, membership), org, pk)


def can_manage(template: MessageTemplate, membership: Membership) -> bool:
    """May this member change or delete the template?"""
    if template.owner_id:
        return template.owner_id == membership.user_id
    return membership.is_admin


def _require_manage(template: MessageTemplate, membership: Membership) -> None:
    if not can_manage(template, membership):
        raise PermissionDenied("Only an admin can change a shared template. Duplicate it to make your own.")


def merge_fields(org: Organization, record_type: str) -> dict[str, str]:
    """Every merge field a template for ``record_type`` may use in this organization (name → label)."""
    custom = custom_field_keys(org.pk, record_type) if record_type else []
    return fields_for(record_type, custom)


def check_template_body(org: Organization, record_type: str, body: str) -> None:
    """Raise a ValidationError on ``body`` naming every unknown or malformed merge field."""
    problems = check_body(body, merge_fields(org, record_type))
    if problems:
        raise ValidationError({"body": problems})


@dataclass
class _Values:
    name: str
    body: str
    record_type: str
    status: str
    shortcode: str
    visibility: str


def _clean(org: Organization, values: _Values, template: MessageTemplate | None) -> None:
    errors: dict[str, list[str]] = {}
    values.name = (values.name or "").strip()
    values.shortcode = (values.shortcode or "").strip().lstrip("/").lower()
    if not values.name:
        errors["name"] = ["Give the template a name."]
    if not (values.body or "").strip():
        errors["body"] = ["Write the message."]
    elif len(values.body) > MAX_BODY:
        errors["body"] = [f"A template can be at most {MAX_BODY:,} characters ({len(values.body):,} now)."]
    if values.record_type and values.record_type not in RecordType.values:
        errors["record_type"] = [
            f"'{values.record_type}' is not a record type (use one of {', '.join(RecordType.values)}, or "
            "leave it blank for any record)."
        ]
    if values.status not in MessageTemplate.Status.values:
        errors["status"] = ["Use published or draft."]
    if values.visibility not in MessageTemplate.Visibility.values:
        errors["visibility"] = ["Use shared or personal."]
    if values.shortcode:
        if not re.match(SHORTCODE_RE, values.shortcode) or len(values.shortcode) > 30:
            errors["shortcode"] = ["Use up to 30 lowercase letters, digits, - and _ (like “welcome”)."]
        else:
            taken = MessageTemplate.objects.filter(organization=org, shortcode=values.shortcode)
            if template is not None:
                taken = taken.exclude(pk=template.pk)
            if taken.exists():
                errors["shortcode"] = [f"/{values.shortcode} is already used by another template."]
    if "body" not in errors and "record_type" not in errors:
        problems = check_body(values.body, merge_fields(org, values.record_type))
        if problems:
            errors["body"] = problems
    if errors:
        raise ValidationError(errors)


def _save(template: MessageTemplate) -> None:
    # The unique constraint is the last word when two saves race for one short code.
    try:
        with transaction.atomic():
            template.save()
    except IntegrityError:
        raise ValidationError({"shortcode": [f"/{template.shortcode} is already used by another template."]})


@transaction.atomic
def do_create_template(
    org: Organization,
    membership: Membership,
    *,
    name: str,
    body: str,
    record_type: str = "",
    status: str = MessageTemplate.Status.PUBLISHED,
    shortcode: str = "",
    visibility: str = "",
) -> MessageTemplate:
    """A new template. Admins create shared ones by default, agents personal ones (and only those)."""
    visibility = visibility or (Shared if membership.is_admin else Personal)
    if visibility == Shared and not membership.is_admin:
        raise PermissionDenied("Only an admin can create a shared template; make it personal instead.")
    values = _Values(name, body, record_type or "", status, shortcode, visibility)
    _clean(org, values, None)
    template = MessageTemplate(
        organization=org,
        name=values.name,
        body=values.body,
        record_type=values.record_type,
        status=values.status,
        shortcode=values.shortcode,
        owner_id=membership.user_id if values.visibility == Personal else None,
        created_by_id=membership.user_id,
    )
    _save(template)
    audit.record(
        org, membership.user, "template.created", template, {"name": template.name, "visibility": visibility}
    )
    return template


@transaction.atomic
def do_update_template(template: MessageTemplate, membership: Membership, **fields) -> MessageTemplate:
    """Change a template the member may manage. Making a personal template shared (or a shared one
    personal) needs an admin; a shared template made personal becomes that admin's."""
    _require_manage(template, membership)
    unknown = sorted(set(fields) - set(EDITABLE))
    if unknown:
        raise ValidationError({name: ["This cannot be changed."] for name in unknown})
    values = _Values(
        fields.get("name", template.name),
        fields.get("body", template.body),
        fields.get("record_type", template.record_type) or "",
        fields.get("status", template.status),
        fields.get("shortcode", template.shortcode),
        fields.get("visibility", template.visibility),
    )
    if values.visibility != template.visibility and not membership.is_admin:
        raise PermissionDenied("Only an admin can share a template with everyone.")
    _clean(template.organization, values, template)
    before = {k: _current(template, k) for k in EDITABLE}
    template.name, template.body, template.record_type = values.name, values.body, values.record_type
    template.status, template.shortcode = values.status, values.shortcode
    template.owner_id = membership.user_id if values.visibility == Personal else None
    changes = {k: [before[k], _current(template, k)] for k in EDITABLE if before[k] != _current(template, k)}
    if changes:
        _save(template)
        audit.record(template.organization, membership.user, "template.updated", template, changes)
    return template


def _current(template: MessageTemplate, name: str) -> str:
    return template.visibility if name == "visibility" else getattr(template, name)


@transaction.atomic
def do_duplicate_template(template: MessageTemplate, membership: Membership) -> MessageTemplate:
    """A draft copy named "… (copy)", without a short code. An agent's copy is always personal."""
    visibility = template.visibility if membership.is_admin else Personal
    copy = MessageTemplate(
        organization=template.organization,
        name=f"{template.name[:93]} (copy)",
        body=template.body,
        record_type=template.record_type,
        status=MessageTemplate.Status.DRAFT,
        owner_id=membership.user_id if visibility == Personal else None,
        created_by_id=membership.user_id,
    )
    copy.save()
    audit.record(template.organization, membership.user, "template.duplicated", copy, {"from": template.pk})
    return copy


@transaction.atomic
def do_delete_template(template: MessageTemplate, membership: Membership) -> None:
    _require_manage(template, membership)
    audit.record(template.organization, membership.user, "template.deleted", template)
    template.delete()


def render_template(template: MessageTemplate, record: CrmRecord | None, *, sender=None) -> RenderResult:
    """The template's text for ``record`` as ``sender`` would send it (the send API, automations).

    Refuses (ValidationError on ``template``) a template of another record type than the record's, and a
    template with record fields when there is no record."""
    if record is not None and template.record_type and template.record_type != record.record_type:
        raise ValidationError(
            {"template": [f"“{template.name}” is for {template.get_record_type_display().lower()} records."]}
        )
    if record is None and template.record_type:
        raise ValidationError(
            {"template": [f"“{template.name}” fills in record fields: send it to a record."]}
        )
    return render(template.body, record, sender=sender, org=template.organization)


def note_template_used(template_id: int, *, count: int = 1) -> None:
    """Count a send of the template and remember when (one UPDATE, safe under concurrent sends)."""
    MessageTemplate.objects.filter(pk=template_id).update(
        usage_count=F("usage_count") + count, last_used_at=timezone.now()
    )
