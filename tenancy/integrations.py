"""Settings → Integrations (admins): where the record widget may be embedded, the CRMs' secrets, and which
CRM user is which member (docs/embed.md)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from quicksend.bounded_ids import BoundedModelChoiceField
from quicksend.errors import FAILED, attempt
from tenancy import embed
from tenancy.access import get_in_org
from tenancy.decorators import admin_required
from tenancy.models import Crm, CrmUserMapping, Membership


def _known_origin_choices() -> list[tuple[str, str]]:
    return [(origin, label) for crm in embed.KNOWN_ORIGINS.values() for origin, label in crm]


class IntegrationsForm(forms.Form):
    known_origins = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Your CRM's pages"
    )
    custom_origins = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Your own CRM domains",
        help_text="One per line, e.g. https://acme.lightning.force.com or https://acme.crm.dynamics.com.",
    )
    match_users_by_email = forms.BooleanField(required=False, label="Match CRM users to members by email")
    salesforce_consumer_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        label="Salesforce connected app: consumer secret",
        help_text="Leave empty to keep the saved one.",
    )
    hubspot_portal_id = forms.CharField(required=False, max_length=20, label="HubSpot account id")
    hubspot_client_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        label="HubSpot app: client secret",
        help_text="Leave empty to keep the saved one.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["known_origins"].choices = _known_origin_choices()


class MappingForm(forms.Form):
    crm = forms.ChoiceField(choices=Crm.choices)
    crm_user_id = forms.CharField(max_length=120, label="User id in the CRM")
    user = BoundedModelChoiceField(queryset=Membership.objects.none(), label="QuickSend member")

    def __init__(self, *args, org, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = Membership.objects.filter(
            organization=org, is_active=True
        ).select_related("user")
        self.fields["user"].label_from_instance = lambda m: m.user.get_full_name() or m.user.email


def _initial(found) -> dict:
    known = {origin for origin, _ in _known_origin_choices()}
    return {
        "known_origins": [o for o in found.allowed_origins if o in known],
        "custom_origins": "\n".join(o for o in found.allowed_origins if o not in known),
        "match_users_by_email": found.match_users_by_email,
        "hubspot_portal_id": found.hubspot_portal_id,
    }


def _save(org, actor, data) -> None:
    origins = list(data["known_origins"]) + data["custom_origins"].split()
    embed.do_save_embed_settings(
        org,
        actor,
        allowed_origins=origins,
        match_users_by_email=data["match_users_by_email"],
        hubspot_portal_id=data["hubspot_portal_id"],
        salesforce_consumer_secret=data["salesforce_consumer_secret"] or None,
        hubspot_client_secret=data["hubspot_client_secret"] or None,
    )


@admin_required
def settings_integrations(request):
    org = request.org
    found = embed.settings_for(org)
    form = IntegrationsForm(request.POST or None, initial=_initial(found))
    mapping_form = MappingForm(org=org)
    if request.method == "POST" and form.is_valid():
        if attempt(form, _save, org, request.user, form.cleaned_data) is not FAILED:
            messages.success(request, "Integration settings saved.")
            return redirect("settings-integrations")
    return render(
        request,
        "tenancy/settings_integrations.html",
        {
            "form": form,
            "mapping_form": mapping_form,
            "settings": found,
            "has_salesforce_secret": bool(found.salesforce_consumer_secret),
            "has_hubspot_secret": bool(found.hubspot_client_secret),
            "mappings": CrmUserMapping.objects.filter(organization=org).select_related("user"),
            "suffixes": embed.CUSTOM_DOMAIN_SUFFIXES,
        },
    )


@admin_required
@require_POST
def mapping_add(request):
    form = MappingForm(request.POST, org=request.org)
    if form.is_valid():
        data = form.cleaned_data
        done = attempt(
            request,
            embed.do_add_crm_user_mapping,
            request.org,
            request.user,
            crm=data["crm"],
            crm_user_id=data["crm_user_id"],
            user=data["user"].user,
        )
        if done is not FAILED:
            messages.success(request, "CRM user linked.")
    else:
        messages.error(request, "Choose the CRM, the user's id there and a member.")
    return redirect("settings-integrations")


@admin_required
@require_POST
def mapping_delete(request, mapping_id: int):
    mapping = get_in_org(CrmUserMapping.objects.all(), request.org, mapping_id)
    embed.do_delete_crm_user_mapping(mapping, request.user)
    messages.success(request, "CRM user unlinked.")
    return redirect("settings-integrations")


@admin_required
@require_POST
def rotate_key(request):
    embed.do_rotate_signing_key(request.org)
    messages.success(request, "New signing key: links not opened yet stop working.")
    return redirect("settings-integrations")
