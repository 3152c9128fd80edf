"""Pages of organizations and people: profile (API tokens, organization switch, invitations), organization
settings, members and seats, teams, the audit log (admins)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from quicksend.bounded_ids import parse_id
from quicksend.errors import FAILED, attempt
from tenancy import access, invitations, services
from tenancy.decorators import admin_required, member_required
from tenancy.filters import AuditFilterForm, filter_audit
from tenancy.forms import AddMemberForm, ApiTokenForm, OrganizationForm, TeamForm
from tenancy.middleware import SESSION_ORG_KEY
from tenancy.models import ApiToken, AuditLog, Invitation, Membership, Role

AUDIT_PAGE_SIZE = 50


@member_required
def profile(request):
    new_key = None
    form = ApiTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        token, new_key = services.do_create_api_token(request.user, request.org, form.cleaned_data["name"])
        messages.success(
            request, f"Token “{token.name}” created. Copy the key now: it will not be shown again."
        )
        form = ApiTokenForm()
    tokens = ApiToken.objects.filter(user=request.user, organization=request.org)
    return render(
        request,
        "tenancy/profile.html",
        {
            "form": form,
            "tokens": tokens,
            "new_key": new_key,
            "pending_invitations": invitations.pending_invitations_for(request.user),
        },
    )


@require_POST
@login_required
def invitation_respond(request, invitation_id: int, answer: str):
    """The invited person accepts or declines (from home, profile or the "no organization" page)."""
    invitation = access.access_own_invitation(request.user, invitation_id)
    org = invitation.organization
    if answer == "decline":
        invitations.do_decline_invitation(invitation, request.user)
        messages.success(request, f"You declined the invitation to {org.name}.")
        return redirect("home")
    if attempt(request, invitations.do_accept_invitation, invitation, request.user) is FAILED:
        return redirect("home")
    request.session[SESSION_ORG_KEY] = org.pk
    messages.success(request, f"You joined {org.name}.")
    return redirect("home")


def invitation_accept(request, invitation_id: int):
    return invitation_respond(request, invitation_id, "accept")


def invitation_decline(request, invitation_id: int):
    return invitation_respond(request, invitation_id, "decline")


for _view in (invitation_accept, invitation_decline):
    _view.isolation_model = Invitation


@require_POST
@member_required
def revoke_token(request, token_id: int):
    token = access.access_own_token(request.org, request.user, token_id)
    services.do_revoke_api_token(token, request.user)
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("profile")


@require_POST
@member_required
def switch_org(request, slug: str):
    membership = (
        Membership.objects.select_related("organization")
        .filter(user=request.user, organization__slug=slug, is_active=True)
        .first()
    )
    if membership is None:
        raise Http404("Not found.")
    request.session[SESSION_ORG_KEY] = membership.organization_id
    messages.success(request, f"Switched to {membership.organization.name}.")
    return redirect("home")


@admin_required
def settings_organization(request):
    org = request.org
    form = OrganizationForm(
        request.POST or None,
        initial={
            "name": org.name,
            "time_zone": org.time_zone,
            "agents_may_delete_records": org.agents_may_delete_records,
        },
    )
    if request.method == "POST" and form.is_valid():
        done = attempt(form, services.do_update_organization, org, request.user, **form.cleaned_data)
        if done is not FAILED:
            messages.success(request, "Organization settings saved.")
            return redirect("settings-organization")
    return render(request, "tenancy/settings_organization.html", {"form": form})


@admin_required
def settings_members(request):
    form = AddMemberForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        invitation = attempt(
            form, invitations.do_invite_member, request.org, request.user, **form.cleaned_data
        )
        if invitation is not FAILED:
            # The same words whether or not the email had an account.
            messages.success(
                request,
                f"Invitation sent to {invitation.email} ({invitation.get_role_display()}). They join when "
                "they accept it after logging in.",
            )
            return redirect("settings-members")
    members = (
        Membership.objects.filter(organization=request.org).select_related("user").prefetch_related("teams")
    )
    seats_used = sum(1 for m in members if m.is_active)
    pending = Invitation.objects.filter(organization=request.org, status=Invitation.Status.PENDING)
    return render(
        request,
        "tenancy/settings_members.html",
        {
            "form": form,
            "members": members,
            "seats_used": seats_used,
            "roles": Role.choices,
            "invitations": pending,
        },
    )


@require_POST
@admin_required
def invitation_withdraw(request, invitation_id: int):
    invitation = access.access_org_invitation(request.org, invitation_id)
    if attempt(request, invitations.do_withdraw_invitation, invitation, request.user) is not FAILED:
        messages.success(request, f"Invitation to {invitation.email} withdrawn.")
    return redirect("settings-members")


invitation_withdraw.isolation_model = Invitation


@require_POST
@admin_required
def member_action(request, membership_id: int):
    membership = access.access_membership(request.org, membership_id)
    attempt(request, _member_action, request, membership, request.POST.get("op"))
    return redirect("settings-members")


def _member_action(request, membership: Membership, op: str | None) -> None:
    if op == "role":
        services.do_change_role(membership, request.user, request.POST.get("role", ""))
        messages.success(request, f"{membership.user.email} is now {membership.get_role_display()}.")
    elif op in ("activate", "deactivate"):
        services.do_set_member_active(membership, request.user, op == "activate")
        messages.success(request, f"{membership.user.email} {op}d.")
    elif op == "remove":
        services.do_remove_member(membership, request.user)
        messages.success(request, f"{membership.user.email} removed.")
    else:
        messages.error(request, "Unknown action.")


@admin_required
def settings_teams(request):
    form = TeamForm(request.POST or None, org=request.org)
    if request.method == "POST" and form.is_valid():
        team = attempt(
            form,
            services.do_create_team,
            request.org,
            request.user,
            form.cleaned_data["name"],
            [m.pk for m in form.cleaned_data["members"]],
        )
        if team is not FAILED:
            messages.success(request, f"Team “{team.name}” created.")
            return redirect("settings-teams")
    teams = request.org.teams.prefetch_related("members__user")
    return render(request, "tenancy/settings_teams.html", {"form": form, "teams": teams})


@admin_required
def settings_team_edit(request, team_id: int):
    team = access.access_team(request.org, team_id)
    initial = {"name": team.name, "members": list(team.members.all())}
    form = TeamForm(request.POST or None, org=request.org, initial=initial)
    if request.method == "POST":
        if request.POST.get("op") == "delete":
            services.do_delete_team(team, request.user)
            messages.success(request, f"Team “{team.name}” deleted.")
            return redirect("settings-teams")
        if form.is_valid():
            done = attempt(
                form,
                services.do_update_team,
                team,
                request.user,
                name=form.cleaned_data["name"],
                member_ids=[m.pk for m in form.cleaned_data["members"]],
            )
            if done is not FAILED:
                messages.success(request, "Team saved.")
                return redirect("settings-teams")
    return render(request, "tenancy/settings_team_edit.html", {"form": form, "team": team})


@admin_required
def settings_audit(request):
    qs = AuditLog.objects.filter(organization=request.org).select_related("actor")
    filter_form = AuditFilterForm(request.GET)
    try:
        qs = filter_audit(qs, request.GET)
        before = request.GET.get("before")
        if before:
            qs = qs.filter(id__lt=parse_id(before, "before"))
    except ValidationError:
        qs = qs.none()
    entries = list(qs.order_by("-id")[: AUDIT_PAGE_SIZE + 1])
    has_more = len(entries) > AUDIT_PAGE_SIZE
    entries = entries[:AUDIT_PAGE_SIZE]
    members = Membership.objects.filter(organization=request.org).select_related("user")
    params = request.GET.copy()
    params.pop("before", None)
    return render(
        request,
        "tenancy/settings_audit.html",
        {
            "entries": entries,
            "next_before": entries[-1].id if has_more and entries else None,
            "members": members,
            "filters": request.GET,
            "filter_form": filter_form,
            "query": params.urlencode(),
        },
    )
