"""Members, roles, seats and teams: the rules an admin relies on."""

import pytest
from django.core.exceptions import ValidationError

from tenancy import services
from tenancy.models import AuditLog, Membership, Role, Team
from tests.factories import MembershipFactory, OrganizationFactory


@pytest.mark.django_db
def test_adding_a_member_past_the_seat_limit_is_refused_and_changes_nothing(alice, org_a):
    org_a.seat_limit = 2
    org_a.save()
    services.do_add_member(org_a, alice, email="new@acme.test")
    before = (Membership.objects.count(), AuditLog.objects.count())
    with pytest.raises(ValidationError, match="All 2 seats of Acme are taken"):
        services.do_add_member(org_a, alice, email="onemore@acme.test")
    assert (Membership.objects.count(), AuditLog.objects.count()) == before
    assert not Membership.objects.filter(user__email="onemore@acme.test").exists()


@pytest.mark.django_db
def test_deactivated_member_frees_a_seat(alice, aaron, org_a):
    org_a.seat_limit = 2
    org_a.save()
    services.do_set_member_active(aaron.memberships.get(), alice, False)
    services.do_add_member(org_a, alice, email="replacement@acme.test")
    with pytest.raises(ValidationError, match="seats"):
        services.do_set_member_active(aaron.memberships.get(), alice, True)


@pytest.mark.django_db
def test_existing_user_joins_a_second_organization(alice, bob, org_a, org_b):
    services.do_add_member(org_a, alice, email="bob@globex.test", role=Role.AGENT)
    assert set(bob.memberships.values_list("organization__slug", flat=True)) == {"acme", "globex"}


@pytest.mark.django_db
def test_adding_the_same_member_twice_says_so(alice, aaron, org_a):
    with pytest.raises(ValidationError, match="already a member"):
        services.do_add_member(org_a, alice, email="aaron@acme.test")


@pytest.mark.django_db
def test_the_last_admin_cannot_be_demoted_or_removed(alice, org_a):
    membership = alice.memberships.get()
    with pytest.raises(ValidationError, match="at least one active admin"):
        services.do_change_role(membership, alice, Role.AGENT)
    with pytest.raises(ValidationError, match="at least one active admin"):
        services.do_remove_member(membership, alice)
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN


@pytest.mark.django_db
def test_team_members_must_belong_to_the_same_organization(alice, org_a, bob):
    foreign = bob.memberships.get()
    with pytest.raises(ValidationError, match="Unknown member"):
        services.do_create_team(org_a, alice, "Sales", [foreign.pk])
    assert not Team.objects.filter(name="Sales").exists()


@pytest.mark.django_db
def test_team_names_are_unique_per_organization_only(alice, bob, org_a, org_b):
    services.do_create_team(org_a, alice, "Support")
    services.do_create_team(org_b, bob, "Support")
    with pytest.raises(ValidationError, match="already exists"):
        services.do_create_team(org_a, alice, "Support")


@pytest.mark.django_db
def test_services_write_the_audit_log(alice, org_a):
    team = services.do_create_team(org_a, alice, "Closers")
    services.do_update_team(team, alice, name="Deal closers")
    entries = list(AuditLog.objects.filter(organization=org_a).values_list("action", "actor__username"))
    assert ("team.created", "alice") in entries
    assert ("team.updated", "alice") in entries


@pytest.mark.django_db
def test_api_token_key_is_only_stored_hashed(alice, org_a):
    token, key = services.do_create_api_token(alice, org_a, "CRM sync")
    assert key.startswith(f"qs_{token.prefix}_")
    assert key not in str(token.__dict__)
    entry = AuditLog.objects.get(action="api_token.created")
    assert key not in str(entry.changes)


@pytest.mark.django_db
def test_api_token_needs_an_active_membership(org_a):
    outsider = MembershipFactory(organization=OrganizationFactory()).user
    with pytest.raises(ValidationError, match="not an active member"):
        services.do_create_api_token(outsider, org_a, "x")
