"""Invitations: how people join an organization (docs/organizations.md "Adding members").

An admin adds someone by email; that always creates an invitation, never a membership, and the admin's
answer is the same whether or not the email already had an account (same message, same status, same body,
comparable time). The invited person accepts or declines it once logged in (home page, profile, or the
"no organization" page). Someone without an account gets one now, as before (the admin's initial password,
or none), and finds the invitation when they first log in.
"""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from tenancy import audit
from tenancy.models import Invitation, Membership, Organization, Role
from tenancy.services import SeatLimitReached, check_seat_available

User = get_user_model()


def _free_username(email: str) -> str:
    # The email is the username of a new account, unless another account already uses it as a username
    # (then a suffix): refusing would tell the admin that the name exists.
    if not User.objects.filter(username__iexact=email).exists():
        return email
    return f"{email[:130]}-{secrets.token_hex(4)}"


def _account_for(email: str, *, first_name: str, last_name: str, password: str | None):
    user = User.objects.filter(email__iexact=email).order_by("pk").first()
    if user is not None:
        # The same work as creating an account (hashing the offered password), so the answer takes as long
        # whether or not the email had one. The password is not applied: it is not the admin's to set.
        make_password(password or None)
        return user
    user = User(username=_free_username(email), email=email, first_name=first_name, last_name=last_name)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean()
    user.save()
    return user


@transaction.atomic
def do_invite_member(
    org: Organization,
    actor,
    *,
    email: str,
    role: str = Role.AGENT,
    first_name: str = "",
    last_name: str = "",
    password: str | None = None,
) -> Invitation:
    """Invite ``email`` to ``org`` with ``role`` (a pending invitation reserves a seat). Inviting someone
    who already has a pending invitation updates its role and returns it."""
    if role not in Role.values:
        raise ValidationError(f"Role must be one of {', '.join(Role.values)}.")
    email = (email or "").strip().lower()
    if not email or "@" not in email:
        raise ValidationError("Enter a valid email address.")
    user = _account_for(email, first_name=first_name, last_name=last_name, password=password)
    if Membership.objects.filter(user=user, organization=org).exists():
        # The admin sees their own members already: this tells them nothing new.
        raise ValidationError(f"{email} is already a member of {org.name}.")
    pending = Invitation.objects.select_for_update().filter(
        organization=org, user=user, status=Invitation.Status.PENDING
    )
    invitation = pending.first()
    if invitation is not None:
        if invitation.role != role:
            invitation.role = role
            invitation.save(update_fields=["role"])
        return invitation
    check_seat_available(org)
    try:
        with transaction.atomic():
            invitation = Invitation.objects.create(
                organization=org,
                user=user,
                email=email,
                role=role,
                invited_by=actor if getattr(actor, "is_authenticated", False) else None,
            )
    except IntegrityError:
        # The same invitation sent twice at once: the first one stands.
        return pending.get()
    audit.record(org, actor, "member.invited", invitation, {"email": email, "role": role})
    return invitation


def pending_invitations_for(user) -> QuerySet[Invitation]:
    """The invitations ``user`` may accept or decline, newest first."""
    if not getattr(user, "is_authenticated", False):
        return Invitation.objects.none()
    return Invitation.objects.filter(user=user, status=Invitation.Status.PENDING).select_related(
        "organization", "invited_by"
    )


def _respond(invitation: Invitation, status: str) -> None:
    invitation.status = status
    invitation.responded_at = timezone.now()
    invitation.save(update_fields=["status", "responded_at"])


@transaction.atomic
def do_accept_invitation(invitation: Invitation, user) -> Membership:
    """Join the organization with the invitation's role. Its seat was reserved when it was sent, so this
    only fails if the plan shrank meanwhile."""
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.user_id != user.pk or not invitation.is_pending:
        raise Http404("Not found.")
    org = Organization.objects.select_for_update().get(pk=invitation.organization_id)
    membership = Membership.objects.filter(user=user, organization=org).first()
    if membership is None:
        if org.memberships.filter(is_active=True).count() >= org.seat_limit:
            raise SeatLimitReached(
                f"{org.name} has no free seat right now. "
                "Ask one of its admins to free one, then accept again."
            )
        membership = Membership.objects.create(user=user, organization=org, role=invitation.role)
    _respond(invitation, Invitation.Status.ACCEPTED)
    audit.record(org, user, "member.joined", membership, {"email": invitation.email, "role": membership.role})
    return membership


@transaction.atomic
def do_decline_invitation(invitation: Invitation, user) -> None:
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.user_id != user.pk or not invitation.is_pending:
        raise Http404("Not found.")
    _respond(invitation, Invitation.Status.DECLINED)
    audit.record(invitation.organization, user, "member.invitation_declined", invitation, {})


@transaction.atomic
def do_withdraw_invitation(invitation: Invitation, actor) -> None:
    """An admin takes back a pending invitation (its seat is free again)."""
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if not invitation.is_pending:
        raise ValidationError("This invitation was already answered.")
    _respond(invitation, Invitation.Status.WITHDRAWN)
    audit.record(invitation.organization, actor, "member.invitation_withdrawn", invitation, {})
