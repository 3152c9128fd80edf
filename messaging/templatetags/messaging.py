"""Template helpers: ``{{ number|number_label }}`` wherever a number appears, and the member's numbers panel
on the profile page (``{% member_numbers_panel %}``)."""

from __future__ import annotations

from django import template

from messaging import access, labels
from messaging.models import MemberMessagingSettings

register = template.Library()


@register.filter
def number_label(number) -> str:
    return labels.number_label(number)


@register.filter
def phone_display(value: str) -> str:
    return labels.format_number(value or "")


@register.inclusion_tag("messaging/_member_numbers_panel.html", takes_context=True)
def member_numbers_panel(context):
    request = context["request"]
    membership = getattr(request, "membership", None)
    if membership is None:
        return {"numbers": [], "membership": None}
    numbers = list(access.numbers_usable_by(membership))
    own = MemberMessagingSettings.objects.filter(membership=membership).values_list(
        "default_number", flat=True
    )
    return {
        "membership": membership,
        "numbers": numbers,
        "own_default_id": own.first(),
        "effective_default": access.default_sender_for(membership),
        "csrf_token": context.get("csrf_token"),
    }
