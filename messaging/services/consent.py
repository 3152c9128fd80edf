"""Consent: opt-out, opt-in, blocked and do-not-contact numbers, across every sender of an organization.

``contact_refusal(org, number)`` is the one check every send path makes (the composer, the API, and the send
task again at send time, so a message queued before a STOP is not sent). ``do_change_consent`` is the one way
to change consent; it keeps ``ConsentState`` current and appends to the ``ConsentEvent`` ledger.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Case, IntegerField, OuterRef, Subquery, Value, When
from django.db.models.functions import Coalesce

from messaging.models import ConsentEvent, ConsentState, Message
from messaging.signals import consent_changed, send_after_commit
from tenancy import audit
from tenancy.models import Organization

Action = ConsentEvent.Action
Method = ConsentEvent.Method

# action → (state field, new value)
_EFFECT: dict[str, tuple[str, bool] | None] = {
    Action.OPT_OUT: ("opted_out", True),
    Action.OPT_IN: ("opted_out", False),
    Action.BLOCK: ("blocked", True),
    Action.UNBLOCK: ("blocked", False),
    Action.DO_NOT_CONTACT: ("do_not_contact", True),
    Action.ALLOW_CONTACT: ("do_not_contact", False),
    Action.HELP: None,  # recorded in the ledger, changes nothing
}

REFUSALS = {
    "opted_out": "This number has opted out (replied STOP) and cannot be texted until it replies START.",
    "do_not_contact": "This number is marked do-not-contact in this organization.",
    "blocked": "This number is blocked in this organization.",
}


def consent_state(org: Organization, phone_number: str) -> ConsentState | None:
    return ConsentState.objects.filter(organization=org, phone_number=phone_number).first()


def contact_refusal(org: Organization | int, phone_number: str, *, keyword_reply: bool = False) -> str | None:
    """Why the organization may not text ``phone_number`` (E.164) now, in plain words; None if it may.

    ``keyword_reply``: the message is the automatic answer to the customer's own STOP/HELP text. Those two
    answers are the texts carriers allow after an opt-out (CTIA), so an opt-out does not refuse them;
    do-not-contact and blocked numbers still get nothing.
    """
    return contact_refusals(org, [phone_number], keyword_reply=keyword_reply).get(phone_number)


def contact_refusals(
    org: Organization | int, phone_numbers, *, keyword_reply: bool = False
) -> dict[str, str]:
    """``contact_refusal`` for many numbers in one query: {number: reason} for those that may not be texted
    (a number that may be texted is absent)."""
    org_id = org if isinstance(org, int) else org.pk
    numbers = list(dict.fromkeys(phone_numbers))
    if not numbers:
        return {}
    rows = ConsentState.objects.filter(organization_id=org_id, phone_number__in=numbers).values_list(
        "phone_number", "opted_out", "do_not_contact", "blocked"
    )
    refusals = {}
    for number, opted_out, do_not_contact, blocked in rows:
        reason = refusal_from_flags(
            _FLAG_OPTED_OUT * opted_out + _FLAG_DO_NOT_CONTACT * do_not_contact + _FLAG_BLOCKED * blocked,
            keyword_reply=keyword_reply,
        )
        if reason:
            refusals[number] = reason
    return refusals


_FLAG_OPTED_OUT, _FLAG_DO_NOT_CONTACT, _FLAG_BLOCKED = 1, 2, 4


def consent_flags(org_field: str, number_field: str):
    """An expression for a query of messages (or anything with an organization and a number): the number's
    consent in that organization as bits (opted out 1, do-not-contact 2, blocked 4; 0 when no state row).
    Lets the send task read consent in the query that reads the message (``refusal_from_flags``)."""
    state = ConsentState.objects.filter(
        organization_id=OuterRef(org_field), phone_number=OuterRef(number_field)
    ).annotate(
        bits=Case(When(opted_out=True, then=Value(_FLAG_OPTED_OUT)), default=Value(0))
        + Case(When(do_not_contact=True, then=Value(_FLAG_DO_NOT_CONTACT)), default=Value(0))
        + Case(When(blocked=True, then=Value(_FLAG_BLOCKED)), default=Value(0))
    )
    return Coalesce(Subquery(state.values("bits")[:1]), Value(0), output_field=IntegerField())


def refusal_from_flags(flags: int | None, *, keyword_reply: bool = False) -> str | None:
    """The refusal ``contact_refusal`` gives for these consent bits (``consent_flags``), or None."""
    flags = flags or 0
    if flags & _FLAG_OPTED_OUT and not keyword_reply:
        return REFUSALS["opted_out"]
    if flags & _FLAG_DO_NOT_CONTACT:
        return REFUSALS["do_not_contact"]
    if flags & _FLAG_BLOCKED:
        return REFUSALS["blocked"]
    return None


@transaction.atomic
def do_change_consent(
    org: Organization,
    phone_number: str,
    action: str,
    method: str,
    *,
    actor=None,
    message: Message | None = None,
    keyword: str = "",
    note: str = "",
) -> ConsentEvent:
    """Record a consent change for ``phone_number`` (E.164) and apply it to the organization's state.

    The state row is locked while it changes, so a STOP and a START racing each other end in the order their
    ledger rows were written.
    """
    if action not in _EFFECT:
        raise ValueError(f"unknown consent action {action!r}")
    state, _ = ConsentState.objects.select_for_update().get_or_create(
        organization=org, phone_number=phone_number
    )
    effect = _EFFECT[action]
    if effect is not None:
        field, value = effect
        if getattr(state, field) != value:
            setattr(state, field, value)
            state.save(update_fields=[field, "updated_at"])
    event = ConsentEvent.objects.create(
        organization=org,
        phone_number=phone_number,
        action=action,
        method=method,
        keyword=keyword[:20],
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        message=message,
        note=note[:300],
    )
    if method in (Method.AGENT, Method.API, Method.IMPORT):
        audit.record(org, actor, f"consent.{action}", event, {"phone_number": phone_number, "method": method})
    send_after_commit(
        consent_changed, organization_id=org.pk, phone_number=phone_number, action=action, method=method
    )
    return event
