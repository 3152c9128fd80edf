"""Template helpers: ``{{ number|number_label }}`` wherever a number appears, and the member's numbers panel
on the profile page (``{% member_numbers_panel %}``)."""

from __future__ import annotations

from django import template

from messaging import access, labels
from messaging.models import MemberMessagingSettings, TwilioAccount

register = template.Library()


@register.filter
def number_label(number) -> str:
    return labels.number_label(number)


@register.filter
def preview_sender(conversation) -> str:
    """Who sent a conversation's last message, for "You: …" / "Automation: Open house: …"."""
    return labels.preview_sender(conversation.last_message_source, conversation.last_message_source_label)


@register.filter
def phone_display(value: str) -> str:
    return labels.format_number(value or "")


@register.inclusion_tag("messaging/_twilio_notice.html", takes_context=True)
def twilio_notice(context):
    """Home-page notices: nothing connected yet (everyone), or an account Twilio refused (admins)."""
    request = context["request"]
    membership = getattr(request, "membership", None)
    if membership is None:
        return {}
    invalid = []
    if membership.is_admin:
        invalid = list(
            TwilioAccount.objects.filter(organization=request.org, status=TwilioAccount.Status.INVALID)
        )
    return {
        "twilio_setup_needed": not access.org_has_verified_twilio(request.org),
        "invalid_accounts": invalid,
        "is_org_admin": membership.is_admin,
        "current_org": request.org,
    }


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


@register.inclusion_tag("messaging/inbox/_bell.html", takes_context=True)
def inbox_bell(context):
    """The top bar's bell: the live unread count (also in the tab title) and the notifications panel. It
    costs the page no query: the bell fetches its counts and the member's preferences itself."""
    request = context["request"]
    return {"membership": getattr(request, "membership", None)}


@register.inclusion_tag("messaging/inbox/_notification_preferences.html", takes_context=True)
def notification_preferences_panel(context):
    """The profile page's "Notifications" card: desktop notification and sound, per member."""
    from messaging.inbox.preferences import notification_preferences

    request = context["request"]
    membership = getattr(request, "membership", None)
    if membership is None:
        return {"membership": None}
    return {
        "membership": membership,
        "preferences": notification_preferences(membership),
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("messaging/inbox/_workspace_panel.html", takes_context=True)
def workspace_panel(context):
    """The home page's inbox summary: my open conversations, my unread texts, failed sends of the week."""
    from messaging.inbox.summary import workspace_summary

    request = context["request"]
    membership = getattr(request, "membership", None)
    if membership is None:
        return {"summary": None}
    return {"summary": workspace_summary(membership)}
