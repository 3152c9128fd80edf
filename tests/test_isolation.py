"""Every object route refuses another organization's member (the tenant-isolation harness)."""

import pytest
from django.http import JsonResponse
from django.urls import include, path

from tenancy.models import Role, Team
from tests.factories import MembershipFactory
from tests.isolation import build_world, check_isolation, iter_url_routes, new_canary


@pytest.fixture
def two_worlds(org_a, org_b, alice, bob):
    world_b = build_world(org_b, bob, new_canary())
    world_a = build_world(org_a, alice, new_canary())
    return world_a, world_b


@pytest.mark.django_db
def test_outsider_gets_404_on_every_object_route(two_worlds, bob):
    world_a, world_b = two_worlds
    report = check_isolation(world_a, world_b, bob)
    assert report.routes >= 8
    assert report.requests >= 40
    assert report.own_org_ok >= 2


@pytest.mark.django_db
def test_agent_of_other_org_is_refused_too(two_worlds, org_b):
    world_a, world_b = two_worlds
    agent = MembershipFactory(organization=org_b, role=Role.AGENT).user
    check_isolation(world_a, world_b, agent)


def leaky_team_view(request, pk):
    # Deliberately wrong: looks the team up without the tenant.
    team = Team.objects.get(pk=pk)
    return JsonResponse({"name": team.name})


urlpatterns = [path("leaky/teams/<int:pk>", leaky_team_view), path("", include("quicksend.urls"))]


@pytest.mark.django_db
def test_harness_fails_on_a_leaking_view(two_worlds, bob, settings):
    settings.ROOT_URLCONF = __name__
    world_a, world_b = two_worlds
    routes, _ = iter_url_routes()
    assert any(r.template == "leaky/teams/{pk}" for r in routes), "the harness must pick up new routes"
    with pytest.raises(AssertionError) as excinfo:
        check_isolation(world_a, world_b, bob)
    assert "/leaky/teams/" in str(excinfo.value)
