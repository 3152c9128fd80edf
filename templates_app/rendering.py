"""The ONE merge-field renderer: ``render(body, record, *, sender=None, org=None) -> RenderResult``.

Merge fields are written ``{{first_name}}``; spaces inside the braces are allowed (``{{ first_name }}``).
A field names the record's own field (``{{first_name}}``, ``{{close_date}}``), a custom field of the record
(``{{custom.source}}``), the user sending (``{{agent.first_name}}``), the record's owner
(``{{owner.first_name}}``) or the organization (``{{org.name}}``). ``{{first_name|default:"there"}}`` stands
in a text when the field is empty on this record.

Which fields exist depends on the record type (``fields_for``): every concrete field of the type's model,
a few computed ones (``full_name``, ``account_name``, ``contact_name``, ``team_name``), the custom fields the
organization's records of that type carry, and the agent/owner/organization fields every type has.

The renderer never raises on a template's content: an unknown field, or a known one empty on this record
without a default, renders as nothing and is reported in ``missing_fields`` (unknown ones also in
``unknown_fields``). Saving a template is where unknown or malformed fields are refused (``check_body``).
Something in double braces that is not a merge field (``{{first name}}``) is left as written.
"""

from __future__ import annotations

import datetime
import decimal
import difflib
import functools
import re
from dataclasses import dataclass, field

from django.utils.text import capfirst

NAME = r"[A-Za-z_][A-Za-z0-9_]*"
FIELD_RE = re.compile(
    r"\{\{\s*(?P<path>" + NAME + r"(?:\." + NAME + r")?)\s*"
    r"""(?:\|\s*default\s*:\s*(?:"(?P<dq>[^"{}]*)"|'(?P<sq>[^'{}]*)'))?\s*\}\}"""
)
# What looks like a merge field to a person: double braces around anything without braces.
TAG_RE = re.compile(r"\{\{[^{}]*\}\}")

NAMESPACES = ("agent", "owner", "org", "custom")
_USER_FIELDS = {
    "first_name": "First name",
    "last_name": "Last name",
    "full_name": "Full name",
    "email": "Email",
}
# Fields every template may use, whatever its record type (or none).
COMMON: dict[str, str] = {
    **{f"agent.{k}": f"Your {v[0].lower() + v[1:]}" for k, v in _USER_FIELDS.items()},
    **{f"owner.{k}": f"Record owner's {v[0].lower() + v[1:]}" for k, v in _USER_FIELDS.items()},
    "org.name": "Organization name",
}
# Older spellings, still understood (templates saved with them keep working); not offered in the picker.
ALIASES = {
    "sender_first_name": "agent.first_name",
    "sender_name": "agent.full_name",
    "owner_first_name": "owner.first_name",
    "owner_name": "owner.full_name",
}
# Model fields that are not merge fields: internal, or stored twice (the raw phone is offered, not E.164).
_SKIPPED = {"id", "organization", "custom_fields", "created_at", "updated_at"}
_COMPUTED: dict[str, dict[str, str]] = {
    "lead": {"full_name": "Full name"},
    "contact": {"full_name": "Full name", "account_name": "Account name"},
    "account": {},
    "case": {"contact_name": "Contact's full name", "account_name": "Account name"},
    "opportunity": {"contact_name": "Contact's full name", "account_name": "Account name"},
}


@functools.cache
def _standard_fields(record_type: str) -> dict[str, str]:
    # The models' fields do not change while the process runs: computed once per type. Callers get the
    # shared dict: never change it.
    from crm.models import model_for

    model = model_for(record_type)
    found: dict[str, str] = {}
    for f in model._meta.concrete_fields:
        if f.name in _SKIPPED or f.name.endswith("_e164") or f.is_relation:
            continue
        found[f.name] = capfirst(str(f.verbose_name))
    found.update(_COMPUTED.get(record_type, {}))
    found["team_name"] = "Team name"
    return dict(sorted(found.items(), key=lambda item: item[1].lower()))


def record_fields(record_type: str) -> dict[str, str]:
    """The record type's standard merge fields: name → label (no custom, agent or organization ones)."""
    if record_type not in _COMPUTED:
        return {}
    return _standard_fields(record_type)


def fields_for(record_type: str | None, custom_keys: tuple[str, ...] | list[str] = ()) -> dict[str, str]:
    """Every merge field a template for ``record_type`` may use (blank: any record, so only ``COMMON``),
    with ``custom_keys`` the custom fields of that type (``crm.custom_fields.custom_field_keys``)."""
    if not record_type:
        return dict(COMMON)
    custom = {
        f"custom.{k}": f"{k.replace('_', ' ').capitalize()} (custom)" for k in custom_keys if _is_name(k)
    }
    return {**record_fields(record_type), **custom, **COMMON}


def _is_name(text: str) -> bool:
    return re.fullmatch(NAME, text) is not None


@dataclass(frozen=True)
class Tag:
    """One merge field of a body, as written."""

    path: str  # "first_name", "custom.source", "agent.first_name" (aliases already resolved)
    default: str | None
    start: int
    end: int


def parse(body: str) -> list[Tag]:
    """Every merge field of ``body`` in order (a malformed ``{{…}}`` is not one: see ``malformed``)."""
    return [
        Tag(
            ALIASES.get(m["path"], m["path"]),
            m["dq"] if m["dq"] is not None else m["sq"],
            m.start(),
            m.end(),
        )
        for m in FIELD_RE.finditer(body or "")
    ]


def malformed(body: str) -> list[str]:
    """Double-brace texts that are not merge fields (``{{first name}}``, ``{{x|default:}}``), as written."""
    rest = FIELD_RE.sub("", body or "")
    return list(dict.fromkeys(m.group(0) for m in TAG_RE.finditer(rest)))


def check_body(body: str, known: dict[str, str]) -> list[str]:
    """Plain-words problems of a template body against the ``known`` fields: [] when it may be saved."""
    problems = []
    for text in malformed(body):
        problems.append(
            f"{text} is not a merge field: write a field name in double braces, like {{{{first_name}}}} or "
            f'{{{{first_name|default:"there"}}}}.'
        )
    unknown = list(dict.fromkeys(tag.path for tag in parse(body) if tag.path not in known))
    for name in unknown:
        hint = difflib.get_close_matches(name, list(known), n=1)
        problems.append(
            f"Unknown merge field {{{{{name}}}}}"
            + (f": did you mean {{{{{hint[0]}}}}}?" if hint else ".")
            + " Pick fields from “Insert field”."
        )
    return problems


@dataclass(frozen=True)
class RenderResult:
    text: str
    missing_fields: tuple[str, ...] = field(default=())  # unknown or empty, in order of first use
    unknown_fields: tuple[str, ...] = field(default=())


def _user_value(user, name: str) -> str:
    if user is None:
        return ""
    first = (getattr(user, "first_name", "") or "").strip()
    last = (getattr(user, "last_name", "") or "").strip()
    if name == "first_name":
        return first
    if name == "last_name":
        return last
    if name == "full_name":
        return f"{first} {last}".strip()
    return (getattr(user, "email", "") or "").strip()


def _person(obj) -> str:
    return f"{obj.first_name} {obj.last_name}".strip() if obj is not None else ""


def format_value(value) -> str:
    """A field's value as people read it in a text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, decimal.Decimal):
        return f"{value:,.2f}"
    if isinstance(value, datetime.datetime):
        return f"{value:%B} {value.day}, {value.year}"
    if isinstance(value, datetime.date):
        return f"{value:%B} {value.day}, {value.year}"
    return str(value)


def _record_value(record, name: str) -> str | None:
    if record is None or name not in record_fields(record.record_type):
        return None
    if name == "full_name":
        return _person(record)
    if name == "account_name":
        return record.account.name if record.account_id else ""
    if name == "contact_name":
        return _person(record.contact) if record.contact_id else ""
    if name == "team_name":
        return record.team.name if record.team_id else ""
    if name == "status":
        return dict(record.STATUS_CHOICES).get(record.status, record.status or "")
    return format_value(getattr(record, name, None))


def _value(path: str, record, sender, org) -> str | None:
    """The field's text, "" when empty, None when the field does not exist here."""
    space, _, name = path.rpartition(".")
    if space == "agent":
        return _user_value(sender, name) if name in _USER_FIELDS else None
    if space == "owner":
        return _user_value(getattr(record, "owner", None), name) if name in _USER_FIELDS else None
    if space == "org":
        if name != "name":
            return None
        org = org if org is not None else getattr(record, "organization", None)
        return org.name if org is not None else ""
    if space == "custom":
        if record is None:
            return None
        return format_value((record.custom_fields or {}).get(name))
    if space:
        return None
    return _record_value(record, name)


def render(body: str, record=None, *, sender=None, org=None) -> RenderResult:
    """Replace every merge field of ``body`` with its value on ``record`` (``sender``: the agent; ``org``:
    defaults to the record's organization)."""
    missing: list[str] = []
    unknown: list[str] = []
    cache: dict[str, str | None] = {}
    body = body or ""
    out: list[str] = []
    position = 0
    for tag in parse(body):
        if tag.path not in cache:
            cache[tag.path] = _value(tag.path, record, sender, org)
        value = cache[tag.path]
        if value is None and tag.path not in unknown:
            unknown.append(tag.path)
        if not (value or "").strip():
            if tag.default is not None:
                value = tag.default
            else:
                if tag.path not in missing:
                    missing.append(tag.path)
                value = value or ""
        out.append(body[position : tag.start])
        out.append(value or "")
        position = tag.end
    out.append(body[position:])
    return RenderResult(text="".join(out), missing_fields=tuple(missing), unknown_fields=tuple(unknown))
