"""The one way to write the audit log. Never pass secrets in ``changes``."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction

from tenancy.models import AuditLog, Organization

SECRET_FIELD_HINTS = ("token", "secret", "password", "key_hash")


def _scrub(changes: dict[str, Any]) -> dict[str, Any]:
    return {
        k: ("[redacted]" if any(h in k.lower() for h in SECRET_FIELD_HINTS) else v)
        for k, v in changes.items()
    }


def record(
    org: Organization | None,
    actor,
    action: str,
    obj: models.Model | None = None,
    changes: dict[str, Any] | None = None,
    *,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    dedupe_key: str = "",
) -> AuditLog:
    """Write one audit row. Writers that may run twice for one event (a task retried after a failure) pass
    a ``dedupe_key`` naming the event (e.g. ``"conversation.closed:<id>:<session id>"``): a second write
    with the same key returns the first row and adds nothing."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)[:200]
    fields = {
        "organization": org,
        "actor": actor if getattr(actor, "is_authenticated", False) else None,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "object_repr": object_repr[:200],
        "changes": _scrub(changes or {}),
    }
    if not dedupe_key:
        return AuditLog.objects.create(**fields)
    # The unique constraint decides (not a prior SELECT), so two concurrent retries still write one row.
    try:
        with transaction.atomic():
            return AuditLog.objects.create(dedupe_key=dedupe_key[:120], **fields)
    except IntegrityError:
        return AuditLog.objects.get(dedupe_key=dedupe_key[:120])


def save_changes(
    obj: models.Model, fields: dict[str, Any], allowed: set[str], *, clean_exclude: list[str] | None = None
) -> dict[str, list]:
    """The settings pages' write: refuse any field outside ``allowed`` (nothing changed), set the rest on
    ``obj``, validate (``full_clean``) and save it; return ``{field: [old, new]}`` of what really changed,
    for ``record``."""
    bad = set(fields) - allowed
    if bad:
        raise ValidationError(f"Cannot change {', '.join(sorted(bad))} here.")
    changes = {k: [getattr(obj, k), v] for k, v in fields.items() if getattr(obj, k) != v}
    for k, v in fields.items():
        setattr(obj, k, v)
    obj.full_clean(exclude=clean_exclude)
    obj.save()
    return changes
