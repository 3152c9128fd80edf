"""Builders of one organization's data for the tenant-isolation harness.

Every model with an ``organization`` foreign key must have a builder here (the harness fails, naming the
model, when one is missing), so a new feature's data is covered without editing the harness. A builder
takes the organization, one of its admin users and a ``canary`` string, creates at least one object of its
model, and puts the canary in its text fields where it has any (the harness looks for the canary in answers).
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import models

BUILDERS: dict[type[models.Model], Callable] = {}


def builds(model: type[models.Model]):
    def register(fn):
        BUILDERS[model] = fn
        return fn

    return register


# --- tenancy ------------------------------------------------------------------------------------------------
from tenancy import audit  # noqa: E402
from tenancy.models import ApiToken, AuditLog, Invitation, Membership, Team  # noqa: E402
from tenancy.services import do_create_api_token  # noqa: E402


@builds(Membership)
def build_membership(org, admin, canary):
    from tests.factories import MembershipFactory

    return MembershipFactory(organization=org, user__username=f"member-{canary}", user__first_name=canary)


@builds(Team)
def build_team(org, admin, canary):
    team = Team.objects.create(organization=org, name=f"Team {canary}")
    team.members.set(Membership.objects.filter(organization=org))
    return team


@builds(ApiToken)
def build_token(org, admin, canary):
    token, _key = do_create_api_token(admin, org, f"token {canary}")
    return token


@builds(Invitation)
def build_invitation(org, admin, canary):
    from tenancy.invitations import do_invite_member

    return do_invite_member(org, admin, email=f"invited-{canary.lower()}@example.test", first_name=canary)


@builds(AuditLog)
def build_audit(org, admin, canary):
    return audit.record(org, admin, "isolation.test", object_type="x", object_id="1", object_repr=canary)


def load_app_builders() -> None:
    """Import each app's builders (tests/isolation_world_<app>.py) so they register themselves."""
    import importlib
    import pkgutil

    import tests

    for info in pkgutil.iter_modules(tests.__path__):
        if info.name.startswith("isolation_world_"):
            importlib.import_module(f"tests.{info.name}")
