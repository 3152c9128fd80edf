"""The organization API: members, teams, tokens, audit log, and who may do what."""

import pytest

from tenancy.models import ApiToken, AuditLog, Membership, Team
from tests.factories import TeamFactory


@pytest.mark.django_db
def test_me_tells_the_caller_their_organization_and_role(aaron_client):
    body = aaron_client.get("/api/v1/me").json()
    assert body["organization"]["slug"] == "acme"
    assert body["role"] == "agent"


@pytest.mark.django_db
def test_anonymous_api_calls_are_refused(client):
    assert client.get("/api/v1/me").status_code in (401, 403)


@pytest.mark.django_db
def test_token_auth_fixes_the_organization(alice, org_a, token_client_for):
    client = token_client_for(alice, org_a)
    assert client.get("/api/v1/me").json()["organization"]["slug"] == "acme"


@pytest.mark.django_db
def test_revoked_token_stops_working(alice, org_a, token_client_for):
    client = token_client_for(alice, org_a)
    token = ApiToken.objects.get(user=alice)
    assert client.delete(f"/api/v1/tokens/{token.pk}").status_code == 204
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


@pytest.mark.django_db
def test_created_token_key_is_returned_once(alice_client):
    created = alice_client.post("/api/v1/tokens", {"name": "zapier"}, format="json").json()
    assert created["key"].startswith("qs_")
    listed = alice_client.get("/api/v1/tokens").json()["results"]
    assert "key" not in listed[0]


@pytest.mark.django_db
def test_agent_cannot_add_members_or_create_teams(aaron_client):
    before = (Membership.objects.count(), Team.objects.count())
    r1 = aaron_client.post("/api/v1/members", {"email": "x@acme.test"}, format="json")
    r2 = aaron_client.post("/api/v1/teams", {"name": "Rogue"}, format="json")
    assert (r1.status_code, r2.status_code) == (403, 403)
    assert (Membership.objects.count(), Team.objects.count()) == before


@pytest.mark.django_db
def test_agent_cannot_read_the_audit_log(aaron_client):
    assert aaron_client.get("/api/v1/audit-log").status_code == 403


@pytest.mark.django_db
def test_admin_adds_member_and_seat_limit_is_enforced(alice_client, org_a):
    org_a.seat_limit = 2
    org_a.save()
    ok = alice_client.post("/api/v1/members", {"email": "new@acme.test", "role": "agent"}, format="json")
    assert ok.status_code == 201
    refused = alice_client.post("/api/v1/members", {"email": "late@acme.test"}, format="json")
    assert refused.status_code == 400
    assert "seats" in refused.json()["detail"][0]
    assert not Membership.objects.filter(user__email="late@acme.test").exists()


@pytest.mark.django_db
def test_unknown_fields_are_refused_by_name(alice_client):
    response = alice_client.post("/api/v1/teams", {"name": "A", "colour": "red"}, format="json")
    assert response.status_code == 400
    assert "colour" in response.json()


@pytest.mark.django_db
def test_team_cannot_take_members_of_another_org(alice_client, bob):
    foreign = bob.memberships.get()
    response = alice_client.post(
        "/api/v1/teams", {"name": "Mixed", "member_ids": [foreign.pk]}, format="json"
    )
    assert response.status_code == 400
    assert not Team.objects.filter(name="Mixed").exists()


@pytest.mark.django_db
def test_outsider_gets_404_for_a_team(bob_client, org_a):
    team = TeamFactory(organization=org_a)
    assert bob_client.get(f"/api/v1/teams/{team.pk}").status_code == 404
    assert bob_client.delete(f"/api/v1/teams/{team.pk}").status_code == 404
    assert Team.objects.filter(pk=team.pk).exists()


@pytest.mark.django_db
def test_audit_log_filters_by_user_object_and_time(alice_client, alice, aaron, org_a):
    from tenancy import services

    team = services.do_create_team(org_a, alice, "Filtered")
    services.do_create_team(org_a, aaron, "Other")
    rows = alice_client.get(f"/api/v1/audit-log?actor={alice.pk}&object_type=tenancy.team").json()["results"]
    assert [r["object_id"] for r in rows] == [str(team.pk)]
    assert alice_client.get("/api/v1/audit-log?since=2999-01-01").json()["results"] == []
    assert AuditLog.objects.count() >= 2


@pytest.mark.django_db
def test_member_list_uses_a_constant_number_of_queries(alice_client, org_a, django_assert_max_num_queries):
    from tests.factories import MembershipFactory

    for _ in range(3):
        MembershipFactory(organization=org_a)
    with django_assert_max_num_queries(8) as small:
        alice_client.get("/api/v1/members")
    for _ in range(10):
        MembershipFactory(organization=org_a)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert len(alice_client.get("/api/v1/members").json()["results"]) == 14


def test_an_audit_row_the_system_wrote_has_no_actor_and_the_schema_says_it_may_not(alice_client, org_a):
    # A worker or a webhook (an account's credentials found invalid, a campaign finishing) acts for nobody.
    AuditLog.objects.create(organization=org_a, actor=None, action="twilio_account.invalidated")
    rows = alice_client.get("/api/v1/audit-log?action=twilio_account.invalidated").json()["results"]
    assert [r["actor"] for r in rows] == [None]
    schema = alice_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    actor = schema["components"]["schemas"]["AuditLog"]["properties"]["actor"]
    assert {"type": "object", "nullable": True, "enum": [None]} in actor["oneOf"]
