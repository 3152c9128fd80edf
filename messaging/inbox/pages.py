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


def _records_from_query(request) -> list:
    """The records the question is about (``record_type`` and one or more ``record_id``), of this
    organization; 404 when there is none."""
    record_type = request.GET.get("record_type", "")
    raw_ids = request.GET.getlist("record_id")
    if record_type not in RecordType.values or not raw_ids or len(raw_ids) > MAX_CARRY_OVER_RECORDS:
        raise Http404("Not found.")
    if not all(raw.isascii() and raw.isdigit() and 0 < int(raw) < 2**63 for raw in raw_ids):
        raise Http404("Not found.")
    ids = {int(raw) for raw in raw_ids}
    records = list(
        model_for(record_type)
        .objects.filter(organization=request.org, pk__in=ids)
        .select_related("owner")
        .order_by("pk")
    )
    if len(records) != len(ids):
        raise Http404("Not found.")
    return records


# The bulk "Reassign" of a record list works on one page of the list at most.
MAX_CARRY_OVER_RECORDS = 200


@member_required
def carry_over(request):
    """After records' owner changed (one record's page, or a list's bulk reassign): move their current
    conversations to the new owner, or end them."""
    records = [
        r
        for r in _records_from_query(request)
        if inbox_services.may_change_record_owner_conversations(r, request.user)
    ]
    if not records:
        raise Http404("Not found.")  # the question, and the conversations it lists, are not theirs
    single = records[0] if len(records) == 1 else None
    back = _safe_next(request, single.get_absolute_url() if single else reverse("home"))
    pending = []
    for record in records:
        for conversation in (
            inbox_services.conversations_for_record(record)
            .filter(is_current=True)
            .select_related("owner", "phone_number")
        ):
            pending.append((record, conversation))
    if not pending:
        return redirect(back)
    form = CarryOverForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        carry = form.cleaned_data["carry_over"]
        changed = sum(
            inbox_services.do_change_record_owner_conversations(record, record.owner, carry, request.user)
            for record in records
        )
        if carry:
            owners = {r.owner.get_full_name() or r.owner.get_username() for r in records if r.owner}
            who = ", ".join(sorted(owners)) or "nobody"
            messages.success(request, f"{changed} conversation(s) moved to {who} with their history.")
        else:
            messages.success(request, f"{changed} conversation(s) ended; the next text starts a new one.")
        return redirect(back)
    return render(
        request,
        "messaging/inbox/carry_over.html",
        {
            "record": single,
            "records": records,
            "label_plural": model_for(records[0].record_type)._meta.verbose_name_plural,
            "conversations": [c for _r, c in pending],
            "pending": pending,
            "form": form,
            "next": back,
        },
    )


def _pending_carry_over(records) -> bool:
    """Some of the records' current conversations are not their (new) owner's yet."""
    from django.db.models import Q

    match = Q(pk__in=[])
    for record in records:
        owned_elsewhere = ~Q(owner_id=record.owner_id) if record.owner_id else Q()
        match |= (
            Q(record_type=record.record_type, record_id=record.pk)
            | Q(regarding_type=record.record_type, regarding_id=record.pk)
        ) & owned_elsewhere
    return (
        Conversation.objects.filter(organization_id=records[0].organization_id, is_current=True)
        .filter(match)
        .exists()
    )


def carry_over_question(sender, record, previous_owner_id, actor, **kwargs) -> str | None:
    """Receiver of ``crm.signals.record_owner_changed``: ask about the record's current conversations when
    some of them are not the new owner's yet."""
    if not _pending_carry_over([record]):
        return None
    query = urlencode({"record_type": record.record_type, "record_id": record.pk})
    return f"{reverse('inbox-carry-over')}?{query}"


def carry_over_question_many(sender, records, actor, **kwargs) -> str | None:
    """Receiver of ``crm.signals.records_owner_changed`` (a list's bulk reassign): the same question for
    every record whose conversations are not all its new owner's yet."""
    asked = [
        r
        for r in sorted(records, key=lambda r: r.pk)
        if _pending_carry_over([r]) and inbox_services.may_change_record_owner_conversations(r, actor)
    ][:MAX_CARRY_OVER_RECORDS]
    if not asked:
        return None
    query = urlencode([("record_type", asked[0].record_type)] + [("record_id", r.pk) for r in asked])
    return f"{reverse('inbox-carry-over')}?{query}"
