"""Management commands: create_api_token and seed_demo."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from tenancy.models import Membership, Organization, Team


@pytest.mark.django_db
def test_create_api_token_prints_a_working_key(alice, org_a):
    out = StringIO()
    call_command("create_api_token", "alice", "--org", "acme", stdout=out)
    key = out.getvalue().strip()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/me").json()["user"]["username"] == "alice"


@pytest.mark.django_db
def test_create_api_token_refuses_a_non_member(alice, org_b):
    with pytest.raises(CommandError, match="not an active member"):
        call_command("create_api_token", "alice", "--org", "globex", stdout=StringIO())


@pytest.mark.django_db
def test_create_api_token_names_an_unknown_org(alice):
    with pytest.raises(CommandError, match="No organization with slug 'nope'"):
        call_command("create_api_token", "alice", "--org", "nope", stdout=StringIO())


@pytest.mark.django_db
def test_seed_demo_is_idempotent_and_prints_logins():
    out = StringIO()
    call_command("seed_demo", stdout=out)
    counts = (Organization.objects.count(), Membership.objects.count(), Team.objects.count())
    call_command("seed_demo", stdout=StringIO())
    assert (Organization.objects.count(), Membership.objects.count(), Team.objects.count()) == counts
    assert set(Organization.objects.values_list("name", flat=True)) >= {"Acme Realty", "Globex"}
    acme = Organization.objects.get(slug="acme-realty")
    assert acme.memberships.filter(role="admin").count() == 1
    assert acme.memberships.filter(role="agent").count() == 2
    assert "admin@acme.test / quicksend-demo" in out.getvalue()
