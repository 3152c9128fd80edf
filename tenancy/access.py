"""Access helpers: look objects up inside the caller's organization; "missing" and "not yours" are the same
404."""

from __future__ import annotations

from django.db.models import Model, QuerySet
from django.http import Http404

from tenancy.models import ApiToken, AuditLog, Invitation, Membership, Organization, Team


def get_in_org(queryset: QuerySet, org: Organization, pk, *, org_field: str = "organization") -> Model:
    """The generic helper every ``access_*`` uses."""
    try:
        return queryset.get(**{org_field: org, "pk": pk})
    except (queryset.model.DoesNotExist, ValueError, TypeError, OverflowError):
        raise Http404("Not found.")


def access_membership(org: Organization, pk) -> Membership:
    return get_in_org(Membership.objects.select_related("user"), org, pk)


def access_team(org: Organization, pk) -> Team:
    return get_in_org(Team.objects.all(), org, pk)


def access_audit_entry(org: Organization, pk) -> AuditLog:
    return get_in_org(AuditLog.objects.select_related("actor"), org, pk)


def access_own_token(org: Organization, user, pk) -> ApiToken:
    return get_in_org(ApiToken.objects.filter(user=user), org, pk)


def access_org_invitation(org: Organization, pk) -> Invitation:
    """An invitation of ``org`` (the admin's side)."""
    return get_in_org(Invitation.objects.select_related("user"), org, pk)


def access_own_invitation(user, pk) -> Invitation:
    """A pending invitation addressed to ``user`` (the invitee's side); the same 404 for anyone else's, a
    missing one or one already answered."""
    try:
        return Invitation.objects.select_related("organization").get(
            pk=pk, user=user, status=Invitation.Status.PENDING
        )
    except (Invitation.DoesNotExist, ValueError, TypeError, OverflowError):
        raise Http404("Not found.")
