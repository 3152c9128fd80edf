"""Login, the settings pages and who may open them."""

import pytest
from django.test import Client

from tenancy.models import Membership, Team
from tests.factories import PASSWORD


@pytest.mark.django_db
def test_login_page_renders(client):
    response = client.get("/login/")
    assert response.status_code == 200
    assert b"Log in to QuickSend" in response.content
    assert b">Email <input" in response.content


@pytest.mark.django_db
def test_wrong_password_is_reported_on_the_form(alice):
    response = Client().post("/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    assert b"Please enter a correct email and password" in response.content


@pytest.mark.django_db
def test_right_password_logs_in_and_lands_home(aaron):
    response = Client().post("/login/", {"username": "aaron", "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == "/"
    assert b"Acme" in response.content


@pytest.mark.django_db
def test_ten_failed_logins_lock_the_account_even_with_the_right_password(alice):
    client = Client()
    for _ in range(10):
        client.post("/login/", {"username": "alice", "password": "nope"})
    locked = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert locked.status_code == 429
    assert b"Too many failed logins" in locked.content


@pytest.mark.django_db
def test_lockout_is_per_account(alice, aaron):
    for _ in range(10):
        Client(REMOTE_ADDR="203.0.113.7").post("/login/", {"username": "alice", "password": "nope"})
    elsewhere = Client(REMOTE_ADDR="198.51.100.20")
    response = elsewhere.post("/login/", {"username": "aaron", "password": PASSWORD})
    assert response.status_code == 302


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["/settings/organization/", "/settings/members/", "/settings/teams/", "/settings/audit/"]
)
def test_agent_cannot_open_admin_pages(aaron_client, url):
    assert aaron_client.get(url).status_code == 403


@pytest.mark.django_db
def test_agent_posting_to_admin_page_writes_nothing(aaron_client):
    before = Membership.objects.count()
    response = aaron_client.post("/settings/members/", {"email": "sneaky@acme.test", "role": "admin"})
    assert response.status_code == 403
    assert Membership.objects.count() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    ["/settings/organization/", "/settings/members/", "/settings/teams/", "/settings/audit/", "/profile/"],
)
def test_admin_opens_settings_pages(alice_client, url):
    assert alice_client.get(url).status_code == 200


@pytest.mark.django_db
def test_admin_adds_member_from_the_page_and_sees_seat_limit_message(alice_client, org_a, alice):
    org_a.seat_limit = 2
    org_a.save()
    ok = alice_client.post("/settings/members/", {"email": "n1@acme.test", "role": "agent"}, follow=True)
    assert b"Invitation sent to n1@acme.test (Agent)." in ok.content
    refused = alice_client.post("/settings/members/", {"email": "n2@acme.test", "role": "agent"})
    assert b"All 2 seats of Acme are taken" in refused.content
    assert not Membership.objects.filter(user__email="n2@acme.test").exists()


@pytest.mark.django_db
def test_admin_creates_and_edits_a_team(alice_client, org_a, aaron):
    aaron_membership = aaron.memberships.get()
    alice_client.post("/settings/teams/", {"name": "West", "members": [aaron_membership.pk]})
    team = Team.objects.get(organization=org_a, name="West")
    assert list(team.members.all()) == [aaron_membership]
    alice_client.post(f"/settings/teams/{team.pk}", {"name": "West coast", "members": []})
    team.refresh_from_db()
    assert team.name == "West coast" and team.members.count() == 0


@pytest.mark.django_db
def test_user_switches_between_organizations(aaron, org_b, bob):
    from tests.factories import MembershipFactory

    MembershipFactory(user=aaron, organization=org_b)
    client = Client()
    client.force_login(aaron)
    assert b"Acme" in client.get("/").content
    client.post("/orgs/globex/switch")
    home = client.get("/")
    assert b"<h1>Globex</h1>" in home.content


@pytest.mark.django_db
def test_user_cannot_switch_into_an_organization_they_do_not_belong_to(alice_client, org_b):
    assert alice_client.post("/orgs/globex/switch").status_code == 404


@pytest.mark.django_db
def test_profile_creates_a_token_and_shows_the_key_once(alice_client):
    created = alice_client.post("/profile/", {"name": "Zapier"})
    assert b'data-testid="new-token"' in created.content
    again = alice_client.get("/profile/")
    assert b'data-testid="new-token"' not in again.content
    assert b"Zapier" in again.content


@pytest.mark.django_db
def test_anonymous_visitor_is_sent_to_login(client):
    response = client.get("/settings/members/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
