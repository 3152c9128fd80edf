"""Business actions on CRM records and record-type settings. Each writes its audit row and emits its
domain event (crm/events.py) after commit. Import actions live in crm/imports.py."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction

from crm.events import RecordEvent, emit
from crm.models import CrmRecord, RecordPhone, RecordType, RecordTypeConfig, model_for
from crm.texting import try_organization_phone
from tenancy import audit
from tenancy.models import Membership, Organization, Team

User = get_user_model()

# Fields a caller may never set through a service (tenant, bookkeeping, derived phones).
PROTECTED_FIELDS = {"id", "organization", "organization_id", "created_at", "updated_at"}


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str, list, dict)):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "pk"):
        return value.pk
    return str(value)


def _check_owner_and_team(org: Organization, owner, team) -> None:
    if (
        owner is not None
        and not Membership.objects.filter(organization=org, user=owner, is_active=True).exists()
    ):
        raise ValidationError({"owner": "The owner must be an active member of this organization."})
    if team is not None and team.organization_id != org.pk:
        raise ValidationError({"team": "The team must belong to this organization."})


def _check_related(org: Organization, data: dict) -> None:
    # A payload can never link another organization's record (serializers scope too; this is the backstop).
    for name in ("account", "contact"):
        related = data.get(name)
        if related is not None and related.organization_id != org.pk:
            raise ValidationError({name: "Not found."})


def _external_id_taken(record: CrmRecord) -> ValidationError:
    label = record.type_label.lower()
    return ValidationError(
        {"external_id": f"Another {label} already has the external id '{record.external_id}'."}
    )


def _validate_and_save(record: CrmRecord, country: str) -> None:
    record.normalize_phones(country)
    if (
        record.external_id
        and type(record)
        .objects.filter(organization_id=record.organization_id, external_id=record.external_id)
        .exclude(pk=record.pk)
        .exists()
    ):
        raise _external_id_taken(record)
    record.full_clean(exclude=[f"{f}_e164" for f in record.phone_fields], validate_constraints=False)
    try:
        with transaction.atomic():
            record.save(default_country=country)
    except IntegrityError:
        # A concurrent request took the external id between the check and the insert.
        if record.external_id:
            raise _external_id_taken(record)
        raise


@transaction.atomic
def do_create_record(org: Organization, actor, record_type: str, data: dict[str, Any]) -> CrmRecord:
    """Create a record of ``record_type``; phones are normalized with the type's default country."""
    model = model_for(record_type)
    data = {k: v for k, v in data.items() if k not in PROTECTED_FIELDS}
    _check_owner_and_team(org, data.get("owner"), data.get("team"))
    _check_related(org, data)
    record = model(organization=org, **data)
    if record.owner_id is None and getattr(actor, "is_authenticated", False):
        record.owner = actor
    config = RecordTypeConfig.for_type(org.pk, record_type)
    _validate_and_save(record, config.default_country)
    audit.record(org, actor, f"{record_type}.created", record)
    emit(RecordEvent("created", org.pk, record_type, record.pk, getattr(actor, "pk", None), changes={}))
    return record


@transaction.atomic
def do_update_record(record: CrmRecord, actor, data: dict[str, Any]) -> CrmRecord:
    """Change fields of ``record``; emits ``updated`` and, when they change, ``status_changed`` and
    ``owner_changed``."""
    org = record.organization
    data = {k: v for k, v in data.items() if k not in PROTECTED_FIELDS}
    _check_owner_and_team(org, data.get("owner"), data.get("team"))
    _check_related(org, data)
    changes: dict[str, list[Any]] = {}
    for name, value in data.items():
        old = getattr(record, name)
        if old != value:
            changes[name] = [_jsonable(old), _jsonable(value)]
            setattr(record, name, value)
    if not changes:
        return record
    config = RecordTypeConfig.for_type(org.pk, record.record_type)
    _validate_and_save(record, config.default_country)
    audit.record(org, actor, f"{record.record_type}.updated", record, changes)
    actor_id = getattr(actor, "pk", None)
    emit(RecordEvent("updated", org.pk, record.record_type, record.pk, actor_id, changes))
    if "status" in changes:
        emit(
            RecordEvent(
                "status_changed",
                org.pk,
                record.record_type,
                record.pk,
                actor_id,
                {"status": changes["status"]},
            )
        )
    if "owner" in changes:
        emit(
            RecordEvent(
                "owner_changed", org.pk, record.record_type, record.pk, actor_id, {"owner": changes["owner"]}
            )
        )
    return record


@transaction.atomic
def do_upsert_record_by_external_id(
    org: Organization, actor, record_type: str, external_id: str, data: dict[str, Any]
) -> tuple[CrmRecord, bool]:
    """Create or update the record whose ``external_id`` is given; returns (record, created)."""
    model = model_for(record_type)
    if not external_id.strip():
        raise ValidationError({"external_id": "The external id is empty."})
    if "\x00" in external_id:
        raise ValidationError({"external_id": "Null characters are not allowed."})
    data = {k: v for k, v in data.items() if k != "external_id"}
    existing = model.objects.select_for_update().filter(organization=org, external_id=external_id).first()
    if existing is None:
        try:
            with transaction.atomic():
                return do_create_record(org, actor, record_type, {**data, "external_id": external_id}), True
        except ValidationError as exc:
            # Two upserts of a new id at once: the loser updates what the winner created.
            if "external_id" not in getattr(exc, "error_dict", {}):
                raise
            existing = model.objects.select_for_update().get(organization=org, external_id=external_id)
    return do_update_record(existing, actor, data), False


def deletion_refusal(record: CrmRecord, actor, membership: Membership | None = None) -> str:
    """Why ``actor`` may not delete ``record`` ('' when they may). The rule (docs/crm.md "Deleting
    records"): admins of the record's organization may delete any record; agents only records they own,
    and only when the organization allows it (``agents_may_delete_records``, off by default). QuickSend
    support (superusers, in the Django admin) may delete any record."""
    if actor is None:
        return ""  # the system itself (a management command), never a request
    if not getattr(actor, "is_authenticated", False) or not actor.is_active:
        return "Log in to delete records."
    if actor.is_superuser:
        return ""
    if membership is None or membership.organization_id != record.organization_id:
        membership = Membership.objects.filter(
            user=actor, organization_id=record.organization_id, is_active=True
        ).first()
    if membership is None or not membership.is_active:
        return "Only members of this organization can delete its records."
    if membership.is_admin:
        return ""
    label = record.type_label.lower()
    if not record.organization.agents_may_delete_records:
        return f"Only an admin can delete this {label}."
    if record.owner_id != actor.pk:
        plural = record._meta.verbose_name_plural
        return f"Agents can delete only the {plural} they own; ask an admin or the owner."
    return ""


def may_delete_record(record: CrmRecord, actor, membership: Membership | None = None) -> bool:
    return not deletion_refusal(record, actor, membership)


@transaction.atomic
def do_delete_record(record: CrmRecord, actor, *, membership: Membership | None = None) -> None:
    """Delete ``record`` if ``actor`` may (``deletion_refusal``); ``PermissionDenied`` otherwise, and
    nothing changes."""
    refusal = deletion_refusal(record, actor, membership)
    if refusal:
        raise PermissionDenied(refusal)
    org, record_type, pk = record.organization, record.record_type, record.pk
    audit.record(org, actor, f"{record_type}.deleted", record)
    record.delete()
    emit(RecordEvent("deleted", org.pk, record_type, pk, getattr(actor, "pk", None)))


@transaction.atomic
def do_reassign_records(
    records: Iterable[CrmRecord], actor, owner, *, team: Team | None = None, set_team: bool = False
) -> int:
    """Give ``records`` (one organization) a new owner (and optionally team). Returns how many changed.

    Each changed record gets an audit row and an ``owner_changed`` event. The record's conversations are not
    touched here: what happens to them is the caller's explicit choice, made through messaging's
    ``do_change_record_owner_conversations(record, new_owner, carry_over, actor)`` (carry over with the
    whole history, or end them); over the API that is ``POST /api/v1/conversations/record-owner-change``
    (docs/inbox.md).
    """
    changed = 0
    for record in records:
        data: dict[str, Any] = {"owner": owner}
        if set_team:
            data["team"] = team
        before = (record.owner_id, record.team_id)
        do_update_record(record, actor, data)
        if (record.owner_id, record.team_id) != before:
            changed += 1
    return changed


@transaction.atomic
def do_save_record_type_config(org: Organization, actor, record_type: str, **fields) -> RecordTypeConfig:
    """Create or change an organization's settings for one record type (admin)."""
    allowed = {
        "sms_phone_field",
        "compliance_field",
        "default_country",
        "priority",
        "allow_create_from_conversation",
    }
    if record_type not in RecordType.values:
        raise ValidationError({"record_type": f"'{record_type}' is not a record type."})
    config = RecordTypeConfig.for_type(org.pk, record_type)
    changes = audit.save_changes(config, fields, allowed, clean_exclude=["organization"])
    if changes:
        audit.record(org, actor, "record_type.updated", config, changes)
    return config


# --- queries used by other apps ------------------------------------------------------------------------


def find_records_by_phone(org: Organization, number: str) -> list[CrmRecord]:
    """Records of ``org`` having ``number`` (any format) in any phone field, best match first (record-type
    priority, then the most recently created). One indexed query on RecordPhone, then one per matched type
    (the record-type configs come from the per-process cache: this runs for every send and inbound text)."""
    e164 = try_organization_phone(org.pk, number)
    if e164 is None:
        return []
    hits: dict[str, set[int]] = {}
    # Written out: building the ORM's version of this one-table lookup cost more CPU than running it.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT record_type, record_id FROM {RecordPhone._meta.db_table} "  # noqa: S608
            "WHERE organization_id = %s AND e164 = %s",
            [org.pk, e164],
        )
        for record_type, record_id in cursor.fetchall():
            hits.setdefault(record_type, set()).add(record_id)
    if not hits:
        return []
    found: list[CrmRecord] = []
    for config in RecordTypeConfig.cached_all_for(org.pk):
        ids = hits.get(config.record_type)
        if ids:
            model = model_for(config.record_type)
            found += list(model.objects.filter(organization=org, pk__in=ids).order_by("-id"))
    return found


def types_creatable_from_conversation(org: Organization) -> list[str]:
    """Record types a conversation's "Create record" menu offers ("Allow create to"), in priority order."""
    return [c.record_type for c in RecordTypeConfig.all_for(org.pk) if c.allow_create_from_conversation]
