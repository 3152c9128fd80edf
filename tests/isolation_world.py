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
from tenancy.models import (  # noqa: E402
    ApiToken,
    AuditLog,
    CrmUserMapping,
    EmbedSession,
    EmbedSettings,
    Invitation,
    LaunchToken,
    Membership,
    Team,
)
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


@builds(EmbedSettings)
def build_embed_settings(org, admin, canary):
    from tenancy.embed import do_save_embed_settings

    return do_save_embed_settings(
        org,
        admin,
        allowed_origins=[f"https://{canary.lower()}.lightning.force.com"],
        match_users_by_email=True,
        salesforce_consumer_secret=f"secret-{canary}",
    )


@builds(CrmUserMapping)
def build_crm_user_mapping(org, admin, canary):
    from tenancy.embed import do_add_crm_user_mapping

    return do_add_crm_user_mapping(org, admin, crm="zoho", crm_user_id=f"zu-{canary}", user=admin)


@builds(LaunchToken)
def build_launch_token(org, admin, canary):
    from tenancy.embed import do_mint_launch_token

    do_mint_launch_token(
        org, crm="generic", crm_user_id=f"u-{canary}", record_type="lead", external_id=f"ext-{canary}"
    )
    return LaunchToken.objects.filter(organization=org).latest("pk")


@builds(EmbedSession)
def build_embed_session(org, admin, canary):
    from tenancy.embed import do_open_embed_session

    membership = Membership.objects.get(organization=org, user=admin)
    claims = {"crm": "generic", "rid": f"ext-{canary}", "name": canary}
    session, _key = do_open_embed_session(membership, claims, record_type="lead", record_id=None, phone="")
    return session


def load_app_builders() -> None:
    """Import each app's builders (tests/isolation_world_<app>.py) so they register themselves."""
    import importlib
    import pkgutil

    import tests

    for info in pkgutil.iter_modules(tests.__path__):
        if info.name.startswith("isolation_world_"):
            importlib.import_module(f"tests.{info.name}")
