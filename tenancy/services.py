"""Business actions on organizations, members, teams and API tokens. Each writes its audit row."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from tenancy import audit
from tenancy.models import ApiToken, Membership, Organization, Role, Team, hash_token

User = get_user_model()


class SeatLimitReached(ValidationError):
    pass


@transaction.atomic
def do_create_organization(
    name: str, *, slug: str | None = None, time_zone: str = "UTC", seat_limit: int = 5, creator=None
) -> Organization:
    org = Organization(name=name, slug=slug or slugify(name)[:60], time_zone=time_zone, seat_limit=seat_limit)
    org.full_clean()
    org.save()
    if creator is not None:
        Membership.objects.create(user=creator, organization=org, role=Role.ADMIN)
    audit.record(org, creator, "organization.created", org)
    return org


@transaction.atomic
def do_update_organization(org: Organization, actor, **fields) -> Organization:
    changes = audit.save_changes(org, fields, {"name", "time_zone", "agents_may_delete_records"})
    if changes:
        audit.record(org, actor, "organization.updated", org, changes)
    return org


def check_seat_available(org: Organization) -> None:
    """A seat must be free: active members plus pending invitations (each reserves one) stay within the
    plan. Locks the organization row so two concurrent additions cannot both take the last seat."""
    locked = Organization.objects.select_for_update().get(pk=org.pk)
    used = locked.memberships.filter(is_active=True).count()
    reserved = locked.invitations.filter(status="pending").count()
    if used + reserved >= locked.seat_limit:
        pending = " (members and pending invitations)" if reserved else ""
        raise SeatLimitReached(
            f"All {locked.seat_limit} seats of {locked.name} are taken{pending}. Deactivate a member, "
            "withdraw an invitation or ask for more seats before adding someone."
        )


@transaction.atomic
def do_add_member(
    org: Organization,
    actor,
    *,
    email: str,
    role: str = Role.AGENT,
    username: str | None = None,
    first_name: str = "",
    last_name: str = "",
    password: str | None = None,
) -> Membership:
    """Add a user (found by email, or created) to the organization, taking a seat."""
    if role not in Role.values:
        raise ValidationError(f"Role must be one of {', '.join(Role.values)}.")
    email = email.strip().lower()
    if not email or "@" not in email:
        raise ValidationError("Enter a valid email address.")
    check_seat_available(org)
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User(username=username or email, email=email, first_name=first_name, last_name=last_name)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.full_clean()
        user.save()
    if Membership.objects.filter(user=user, organization=org).exists():
        raise ValidationError(f"{email} is already a member of {org.name}.")
    membership = Membership.objects.create(user=user, organization=org, role=role)
    audit.record(org, actor, "member.added", membership, {"email": email, "role": role})
    return membership


def _ensure_an_admin_remains(membership: Membership) -> None:
    others = Membership.objects.filter(organization=membership.organization, role=Role.ADMIN, is_active=True)
    if not others.exclude(pk=membership.pk).exists():
        raise ValidationError("An organization needs at least one active admin.")


@transaction.atomic
def do_change_role(membership: Membership, actor, role: str) -> Membership:
    if role not in Role.values:
        raise ValidationError(f"Role must be one of {', '.join(Role.values)}.")
    if membership.role == Role.ADMIN and role != Role.ADMIN:
        _ensure_an_admin_remains(membership)
    old = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    audit.record(membership.organization, actor, "member.role_changed", membership, {"role": [old, role]})
    return membership


@transaction.atomic
def do_set_member_active(membership: Membership, actor, active: bool) -> Membership:
    if membership.is_active == active:
        return membership
    if active:
        check_seat_available(membership.organization)
    elif membership.role == Role.ADMIN:
        _ensure_an_admin_remains(membership)
    membership.is_active = active
    membership.save(update_fields=["is_active"])
    audit.record(
        membership.organization, actor, "member.activated" if active else "member.deactivated", membership
    )
    return membership


@transaction.atomic
def do_remove_member(membership: Membership, actor) -> None:
    if membership.role == Role.ADMIN:
        _ensure_an_admin_remains(membership)
    org = membership.organization
    audit.record(org, actor, "member.removed", membership, {"email": membership.user.email})
    membership.delete()


@transaction.atomic
def do_create_team(org: Organization, actor, name: str, member_ids: list[int] | None = None) -> Team:
    name = name.strip()
    if not name:
        raise ValidationError("A team needs a name.")
    try:
        with transaction.atomic():
            team = Team.objects.create(organization=org, name=name)
    except IntegrityError:
        raise ValidationError(f"A team named '{name}' already exists.")
    if member_ids:
        do_set_team_members(team, actor, member_ids, _audit=False)
    audit.record(org, actor, "team.created", team, {"members": sorted(member_ids or [])})
    return team


@transaction.atomic
def do_update_team(
    team: Team, actor, *, name: str | None = None, member_ids: list[int] | None = None
) -> Team:
    changes = {}
    if name is not None and name.strip() != team.name:
        name = name.strip()
        if not name:
            raise ValidationError("A team needs a name.")
        if Team.objects.filter(organization=team.organization, name=name).exclude(pk=team.pk).exists():
            raise ValidationError(f"A team named '{name}' already exists.")
        changes["name"] = [team.name, name]
        team.name = name
        team.save(update_fields=["name"])
    if member_ids is not None:
        changes["members"] = sorted(member_ids)
        do_set_team_members(team, actor, member_ids, _audit=False)
    if changes:
        audit.record(team.organization, actor, "team.updated", team, changes)
    return team


def do_set_team_members(team: Team, actor, member_ids: list[int], *, _audit: bool = True) -> Team:
    members = list(Membership.objects.filter(organization=team.organization, pk__in=member_ids))
    missing = set(member_ids) - {m.pk for m in members}
    if missing:
        # Same message for foreign and missing ids: the caller learns nothing about other organizations.
        raise ValidationError(f"Unknown member id(s): {', '.join(str(i) for i in sorted(missing))}.")
    team.members.set(members)
    if _audit:
        audit.record(team.organization, actor, "team.members_set", team, {"members": sorted(member_ids)})
    return team


@transaction.atomic
def do_delete_team(team: Team, actor) -> None:
    audit.record(team.organization, actor, "team.deleted", team)
    team.delete()


def _new_key() -> tuple[str, str]:
    prefix = secrets.token_hex(4)
    return prefix, f"qs_{prefix}_{secrets.token_urlsafe(32)}"


@transaction.atomic
def do_create_api_token(user, org: Organization, name: str) -> tuple[ApiToken, str]:
    """Create a token; return it with the plain key, which is never shown again."""
    if not Membership.objects.filter(user=user, organization=org, is_active=True).exists():
        raise ValidationError(f"{user} is not an active member of {org.name}.")
    name = (name or "").strip() or "API token"
    prefix, key = _new_key()
    token = ApiToken.objects.create(
        user=user, organization=org, name=name[:100], prefix=prefix, key_hash=hash_token(key)
    )
    audit.record(org, user, "api_token.created", token, {"name": token.name})
    return token, key


@transaction.atomic
def do_revoke_api_token(token: ApiToken, actor) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit.record(token.organization, actor, "api_token.revoked", token)
    return token
