"""Pages of the inbox: the inbox itself (list + selected conversation), "My messages", Settings → Inbox, the
member's notification preferences and the carry-over question after a record's owner changed.

Thin: the lists and actions run in the browser over the REST API (one shape for pages, API and live events);
these views resolve what the page needs to start and call services for the forms they post."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from crm.models import RecordType, model_for
from crm.services import types_creatable_from_conversation
from messaging import access, labels
from messaging.inbox import actions as inbox_services
from messaging.inbox.forms import CarryOverForm, InboxSettingsForm, NotificationPreferencesForm
from messaging.inbox.preferences import do_save_notification_preferences
from messaging.inbox.visibility import inbox_settings_for, visible_conversations
from messaging.models import Conversation, InboxSettings, Message, MessageStatus, PhoneNumber
from tenancy.decorators import admin_required, member_required
from tenancy.models import Membership


def _members(org):
    return (
        Membership.objects.filter(organization=org, is_active=True)
        .select_related("user")
        .order_by("user__first_name", "user__username")
    )


def _numbers_to_filter(membership) -> list[PhoneNumber]:
    """The numbers the inbox's number picker offers: every number of the organization for admins and when
    agents see everything, else the numbers the agent may send from."""
    settings = inbox_settings_for(membership.organization_id)
    if membership.is_admin or settings.agent_visibility == InboxSettings.Visibility.ALL:
        return list(PhoneNumber.objects.filter(organization=membership.organization, is_active=True))
    return list(access.numbers_usable_by(membership))


def _tabs(membership, settings: InboxSettings) -> list[tuple[str, str]]:
    """Mine / Team / Unassigned / All, as the visibility rule makes them different from each other."""
    tabs = [("mine", "Mine")]
    if membership.teams.exists() and (membership.is_admin or settings.agent_visibility != "own"):
        tabs.append(("team", "My teams"))
    tabs.append(("unassigned", "Unassigned"))
    if membership.is_admin or settings.agent_visibility != InboxSettings.Visibility.OWN:
        tabs.append(("all", "All"))
    return tabs


def _title_field(model) -> dict:
    """What "Create a record" asks for a type: first and last name for people, else its title field."""
    names = {f.name for f in model._meta.concrete_fields}
    if {"first_name", "last_name"} <= names:
        return {"person": True}
    for name in ("name", "subject"):
        if name in names:
            return {"field": name, "label": model._meta.get_field(name).verbose_name.capitalize()}
    return {}


@member_required
def inbox(request, pk: int | None = None):
    membership = request.membership
    if pk is not None and not visible_conversations(membership).filter(pk=pk).exists():
        raise Http404("Not found.")
    settings = inbox_settings_for(request.org)
    senders = list(access.numbers_usable_by(membership))
    default_sender = access.default_sender_for(membership)
    creatable = [
        (rt, model_for(rt)._meta.verbose_name) for rt in types_creatable_from_conversation(request.org)
    ]
    record_urls = {rt: reverse(f"crm-{rt}-detail", args=[0]) for rt in RecordType.values}
    return render(
        request,
        "messaging/inbox/inbox.html",
        {
            "conversation_id": pk,
            "tabs": _tabs(membership, settings),
            "numbers": [(n.pk, labels.number_label(n)) for n in _numbers_to_filter(membership)],
            "senders": [(n.pk, labels.number_label(n)) for n in senders],
            "default_sender_id": default_sender.pk if default_sender else None,
            "members": _members(request.org),
            "teams": request.org.teams.order_by("name"),
            "creatable": creatable,
            "idle_minutes": settings.idle_timeout_minutes,
            "is_admin": membership.is_admin,
            "creatable_fields": {rt: _title_field(model_for(rt)) for rt, _label in creatable},
            "record_urls": record_urls,
        },
    )


inbox.isolation_model = Conversation


@member_required
def my_messages(request):
    return render(
        request,
        "messaging/inbox/my_messages.html",
        {
            "numbers": [(n.pk, labels.number_label(n)) for n in _numbers_to_filter(request.membership)],
            "statuses": MessageStatus.choices,
            "directions": Message.Direction.choices,
        },
    )


@admin_required
def settings_inbox(request):
    current = inbox_settings_for(request.org)
    form = InboxSettingsForm(request.POST or None, instance=InboxSettings(organization=request.org))
    if request.method != "POST":
        form = InboxSettingsForm(instance=current)
    if request.method == "POST" and form.is_valid():
        try:
            inbox_services.do_save_inbox_settings(request.org, request.user, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "Inbox settings saved.")
            return redirect("settings-inbox")
    return render(request, "messaging/inbox/settings_inbox.html", {"form": form})


@require_POST
@member_required
def notification_preferences(request):
    form = NotificationPreferencesForm(request.POST)
    form.is_valid()  # two checkboxes: absent means off, so every post is valid
    do_save_notification_preferences(request.membership, **form.cleaned_data)
    messages.success(request, "Your notification preferences were saved.")
    return redirect("profile")


def _safe_next(request, default: str) -> str:
    target = request.GET.get("next") or request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return default


def _record_from_query(request):
    record_type = request.GET.get("record_type", "")
    record_id = request.GET.get("record_id", "")
    if record_type not in RecordType.values or not record_id.isdigit():
        raise Http404("Not found.")
    record = model_for(record_type).objects.filter(organization=request.org, pk=int(record_id)).first()
    if record is None:
        raise Http404("Not found.")
    return record


@member_required
def carry_over(request):
    """After a record's owner changed: move its current conversations to the new owner, or end them."""
    record = _record_from_query(request)
    if not inbox_services.may_change_record_owner_conversations(record, request.user):
        raise Http404("Not found.")  # the question, and the conversations it lists, are not theirs
    back = _safe_next(request, record.get_absolute_url())
    conversations = list(
        inbox_services.conversations_for_record(record)
        .filter(is_current=True)
        .select_related("owner", "phone_number")
    )
    if not conversations:
        return redirect(back)
    form = CarryOverForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        changed = inbox_services.do_change_record_owner_conversations(
            record, record.owner, form.cleaned_data["carry_over"], request.user
        )
        if form.cleaned_data["carry_over"]:
            who = (record.owner.get_full_name() or record.owner.get_username()) if record.owner else "nobody"
            messages.success(request, f"{changed} conversation(s) moved to {who} with their history.")
        else:
            messages.success(request, f"{changed} conversation(s) ended; the next text starts a new one.")
        return redirect(back)
    return render(
        request,
        "messaging/inbox/carry_over.html",
        {"record": record, "conversations": conversations, "form": form, "next": back},
    )


def carry_over_question(sender, record, previous_owner_id, actor, **kwargs) -> str | None:
    """Receiver of ``crm.signals.record_owner_changed``: ask about the record's current conversations when
    some of them are not the new owner's yet."""
    pending = (
        inbox_services.conversations_for_record(record)
        .filter(is_current=True)
        .exclude(owner_id=record.owner_id)
        .exists()
    )
    if not pending:
        return None
    query = urlencode({"record_type": record.record_type, "record_id": record.pk})
    return f"{reverse('inbox-carry-over')}?{query}"
