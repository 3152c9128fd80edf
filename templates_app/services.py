"""Template actions (admins write, everyone reads): each writes its audit row."""

from __future__ import annotations

from django.db import transaction

from templates_app.models import MessageTemplate
from tenancy import audit
from tenancy.models import Organization

EDITABLE = ("name", "body", "record_type")


@transaction.atomic
def do_create_template(
    org: Organization, actor, *, name: str, body: str, record_type: str = ""
) -> MessageTemplate:
    template = MessageTemplate.objects.create(
        organization=org,
        name=name,
        body=body,
        record_type=record_type or "",
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    audit.record(org, actor, "template.created", template, {"name": name})
    return template


@transaction.atomic
def do_update_template(template: MessageTemplate, actor, **fields) -> MessageTemplate:
    changes = {
        k: [getattr(template, k), v] for k, v in fields.items() if k in EDITABLE and getattr(template, k) != v
    }
    for name, (_old, new) in changes.items():
        setattr(template, name, new)
    if changes:
        template.save()
        audit.record(template.organization, actor, "template.updated", template, changes)
    return template


@transaction.atomic
def do_delete_template(template: MessageTemplate, actor) -> None:
    audit.record(template.organization, actor, "template.deleted", template)
    template.delete()
