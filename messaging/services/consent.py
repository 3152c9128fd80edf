"""Consent: opt-out, opt-in, blocked and do-not-contact numbers, across every sender of an organization.

``contact_refusal(org, number)`` is the one check every send path makes (the composer, the API, and the send
task again at send time, so a message queued before a STOP is not sent). ``do_change_consent`` is the one way
to change consent; it keeps ``ConsentState`` current and appends to the ``ConsentEvent`` ledger.
"""

from __future__ import annotations

from django.db import transaction

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
    org_id = org if isinstance(org, int) else org.pk
    state = (
        ConsentState.objects.filter(organization_id=org_id, phone_number=phone_number)
        .values("opted_out", "do_not_contact", "blocked")
        .first()
    )
    if state is None:
        return None
    for flag in ("opted_out", "do_not_contact", "blocked"):
        if flag == "opted_out" and keyword_reply:
            continue
        if state[flag]:
            return REFUSALS[flag]
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
