"""Twilio settings pages (admins) and the member's own default number. Thin: parse, access-check, call a
service, render."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Prefetch
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_POST

from messaging import access
from messaging.models import PhoneNumber, TwilioAccount
from messaging.services import numbers as number_services
from messaging.twilio import accounts as account_services
from messaging.twilio.forms import (
    ConnectAccountForm,
    MessagingSettingsForm,
    MyDefaultNumberForm,
    NumberForm,
    ReplaceTokenForm,
)
from messaging.twilio.public_urls import incoming_sms_url, status_callback_url
from quicksend.errors import FAILED, attempt
from tenancy.decorators import admin_required, member_required
from tenancy.models import Membership


def _numbers_of(org):
    return (
        PhoneNumber.objects.filter(organization=org)
        .select_related("account")
        .prefetch_related(
            Prefetch("assigned_members", queryset=Membership.objects.select_related("user")), "assigned_teams"
        )
        .order_by("-is_active", "-sms_capable", "phone_number")
    )


@sensitive_post_parameters("auth_token")
@sensitive_variables()
@admin_required
def settings_twilio(request):
    org = request.org
    op = request.POST.get("op") if request.method == "POST" else None
    connect_form = ConnectAccountForm(request.POST if op == "connect" else None)
    current = access.messaging_settings_for(org)
    settings_form = MessagingSettingsForm(
        request.POST if op == "settings" else None,
        sendable=access.sendable_numbers(org),
        initial={
            "default_number": current.default_number,
            "agents_may_use_any_number": current.agents_may_use_any_number,
        },
    )
    if op == "connect" and connect_form.is_valid():
        result = attempt(
            connect_form,
            account_services.do_connect_twilio_account,
            org,
            request.user,
            connect_form.cleaned_data["account_sid"],
            connect_form.cleaned_data["auth_token"],
            connect_form.cleaned_data["friendly_name"],
        )
        if result is not FAILED:
            messages.success(request, result.messages[0])
            for line in result.messages[1:]:
                (messages.warning if result.numbers_error else messages.info)(request, line)
            return redirect("settings-twilio")
    if op == "settings" and settings_form.is_valid():
        saved = attempt(
            settings_form,
            number_services.do_update_messaging_settings,
            org,
            request.user,
            **settings_form.cleaned_data,
        )
        if saved is not FAILED:
            messages.success(request, "Messaging settings saved.")
            return redirect("settings-twilio")
    numbers = list(_numbers_of(org))
    for n in numbers:
        n.webhook_state = number_services.webhook_state(n)
    return render(
        request,
        "messaging/settings_twilio.html",
        {
            "tab": "twilio",
            "accounts": TwilioAccount.objects.filter(organization=org),
            "numbers": numbers,
            "connect_form": connect_form,
            "settings_form": settings_form,
            "messaging_settings": current,
            "incoming_sms_url": incoming_sms_url(),
            "status_callback_url": status_callback_url(),
        },
    )


@sensitive_post_parameters("auth_token")
@sensitive_variables()
@require_POST
@admin_required
def twilio_account_action(request, pk: str):
    account = access.access_twilio_account(request.org, pk)
    op = request.POST.get("op")
    attempt(request, _account_action, request, account, op, prefix=f"{account}: ")
    return redirect("settings-twilio")


def _account_action(request, account: TwilioAccount, op: str | None) -> None:
    if op == "validate":
        error = account_services.do_validate_twilio_account(account, request.user)
        if error is None:
            messages.success(request, f"{account}: {account.last_validation_result}")
        else:
            messages.error(request, f"{account}: {error.message}")
    elif op == "refresh":
        result = account_services.do_refresh_numbers(account, request.user)
        messages.success(request, f"Numbers of {account} refreshed: {result.summary()}")
    elif op == "token":
        form = ReplaceTokenForm(request.POST)
        if form.is_valid():
            account_services.do_update_twilio_account(
                account, request.user, auth_token=form.cleaned_data["auth_token"]
            )
            messages.success(request, f"{account}: new auth token verified and saved.")
        else:
            messages.error(request, "Enter the new auth token.")
    elif op == "rename":
        account_services.do_update_twilio_account(
            account, request.user, friendly_name=request.POST.get("friendly_name", "")
        )
        messages.success(request, "Account renamed.")
    elif op == "delete":
        account_services.do_delete_twilio_account(account, request.user)
        messages.success(request, f"{account} disconnected; its numbers were removed from QuickSend.")
    else:
        messages.error(request, "Unknown action.")


twilio_account_action.isolation_model = TwilioAccount


@admin_required
def number_detail(request, pk: str):
    number = access.access_phone_number(request.org, pk)
    initial = {
        "label": number.label,
        "members": list(number.assigned_members.all()),
        "teams": list(number.assigned_teams.all()),
    }
    form = NumberForm(request.POST or None, org=request.org, initial=initial)
    if request.method == "POST":
        if request.POST.get("op") == "configure":
            configured = attempt(
                request,
                number_services.do_configure_number_webhook,
                number,
                request.user,
                prefix="Twilio did not accept the change: ",
            )
            if configured is not FAILED:
                messages.success(
                    request, f"{number.display_name} now sends incoming texts to {number.sms_url} (POST)."
                )
            return redirect("settings-twilio-number", pk=number.pk)
        if form.is_valid():
            saved = attempt(
                form,
                number_services.do_update_number,
                number,
                request.user,
                label=form.cleaned_data["label"],
                member_ids=[m.pk for m in form.cleaned_data["members"]],
                team_ids=[t.pk for t in form.cleaned_data["teams"]],
            )
            if saved is not FAILED:
                messages.success(request, f"{number.display_name} saved.")
                return redirect("settings-twilio")
    return render(
        request,
        "messaging/settings_twilio_number.html",
        {
            "tab": "twilio",
            "number": number,
            "form": form,
            "webhook_state": number_services.webhook_state(number),
            "incoming_sms_url": incoming_sms_url(),
            "status_callback_url": status_callback_url(),
        },
    )


number_detail.isolation_model = PhoneNumber


@require_POST
@member_required
def my_default_number(request):
    form = MyDefaultNumberForm(request.POST, usable=access.numbers_usable_by(request.membership))
    if not form.is_valid():
        messages.error(request, "You may not send from that number.")
        return redirect("profile")
    saved = attempt(
        request,
        number_services.do_set_member_default_number,
        request.membership,
        request.user,
        form.cleaned_data["default_number"],
    )
    if saved is not FAILED:
        messages.success(request, "Your default number was saved.")
    return redirect("profile")
