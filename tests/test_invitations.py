"""Adding a member by email is an invitation the person accepts: an admin can neither add someone else's
account without consent nor learn which emails have accounts."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tenancy.models import AuditLog, Invitation, Membership, Role
from tests.factories import PASSWORD, UserFactory

User = get_user_model()


def _normalized(response) -> str:
    """The page without what legitimately differs between two requests (CSRF tokens, the typed email,
    invitation ids and times)."""
    text = response.content.decode()
    text = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", text)
    text = re.sub(r"[\w.+-]+@[\w.-]+", "EMAIL", text)
    text = re.sub(r"/settings/invitations/\d+/", "/settings/invitations/N/", text)
    return re.sub(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", "TIME", text)


@pytest.mark.django_db
def test_adding_bob_of_another_organization_invites_him_and_adds_nothing(alice_client, bob, org_a):
    response = alice_client.post("/api/v1/members", {"email": "bob@globex.test"}, format="json")
    assert response.status_code == 201
    assert not Membership.objects.filter(user=bob, organization=org_a).exists()
    invitation = Invitation.objects.get(organization=org_a)
    assert (invitation.user, invitation.status, invitation.role) == (bob, "pending", "agent")
    assert AuditLog.objects.filter(action="member.invited", organization=org_a).exists()


@pytest.mark.django_db
def test_api_answer_is_the_same_for_an_existing_and_a_new_email(alice_client, bob):
    existing = alice_client.post(
        "/api/v1/members", {"email": "bob@globex.test", "role": "agent"}, format="json"
    )
    new = alice_client.post("/api/v1/members", {"email": "nobody@new.test", "role": "agent"}, format="json")
    assert existing.status_code == new.status_code == 201
    a, b = existing.json(), new.json()
    assert set(a) == set(b) == {"id", "email", "role", "status", "created_at", "responded_at"}
    assert (a["status"], a["role"], a["responded_at"]) == (b["status"], b["role"], b["responded_at"])
    listed = alice_client.get("/api/v1/invitations").json()["results"]
    assert sorted(i["email"] for i in listed) == ["bob@globex.test", "nobody@new.test"]
    # Neither is a member yet: the member list cannot tell them apart either.
    emails = {m["user"]["email"] for m in alice_client.get("/api/v1/members").json()["results"]}
    assert "bob@globex.test" not in emails and "nobody@new.test" not in emails


@pytest.mark.django_db
def test_page_answer_is_the_same_for_an_existing_and_a_new_email(alice_client, bob):
    answers = [
        alice_client.post("/settings/members/", {"email": email, "role": "agent", "password": "x" * 12})
        for email in ("bob@globex.test", "newbie@new.test")
    ]
    assert {(a.status_code, a["Location"]) for a in answers} == {(302, "/settings/members/")}
    alice_client.get("/settings/members/")  # shows (and so clears) those two answers' messages
    flashes = []
    for email in ("carla@globex.test", "someone@new.test"):
        if email.endswith("globex.test"):
            UserFactory(username="carla", email=email)
        page = alice_client.post("/settings/members/", {"email": email, "role": "agent"}, follow=True)
        flashes.append(_normalized(page).split('<ul class="flash">')[1].split("</ul>")[0])
    assert flashes[0] == flashes[1]
    assert "Invitation sent to EMAIL (Agent)." in flashes[0]
    # Both wait in the same table, as pending invitations; neither is a member.
    page = alice_client.get("/settings/members/").content.decode()
    pending = page.split('data-testid="pending-invitations"')[1].split("</table>")[0]
    for email in ("bob@globex.test", "newbie@new.test", "carla@globex.test", "someone@new.test"):
        assert f"<tr><td>{email}</td><td>Agent</td>" in pending


@pytest.mark.django_db
def test_an_existing_accounts_password_is_never_changed_by_an_invitation(alice_client, bob):
    alice_client.post("/api/v1/members", {"email": "bob@globex.test", "password": "hijacked-pass-1"})
    bob.refresh_from_db()
    assert bob.check_password(PASSWORD) and not bob.check_password("hijacked-pass-1")


@pytest.mark.django_db
def test_bob_sees_the_invitation_on_his_home_page_and_accepts_it(alice_client, bob, org_a, client_for):
    alice_client.post("/api/v1/members", {"email": "BOB@globex.test", "role": "admin"}, format="json")
    bob_client = client_for(bob)
    home = bob_client.get("/")
    assert home.status_code == 200
    assert b"Acme</strong> invites you to join as admin" in home.content
    assert b"Acme</strong> invites you" in bob_client.get("/profile/").content
    invitation = Invitation.objects.get()
    response = bob_client.post(f"/invitations/{invitation.pk}/accept", follow=True)
    assert b"You joined Acme." in response.content
    membership = Membership.objects.get(user=bob, organization=org_a)
    assert membership.role == Role.ADMIN and membership.is_active
    invitation.refresh_from_db()
    assert invitation.status == "accepted" and invitation.responded_at is not None
    assert AuditLog.objects.filter(action="member.joined", actor=bob, organization=org_a).exists()
    # Answered: it cannot be accepted again.
    assert bob_client.post(f"/invitations/{invitation.pk}/accept").status_code == 404


@pytest.mark.django_db
def test_declining_adds_nothing_and_frees_the_seat(alice_client, bob, org_a, client_for):
    org_a.seat_limit = 2
    org_a.save()
    alice_client.post("/api/v1/members", {"email": "bob@globex.test"}, format="json")
    full = alice_client.post("/api/v1/members", {"email": "carl@new.test"}, format="json")
    assert full.status_code == 400 and "seats" in full.json()["detail"][0]
    invitation = Invitation.objects.get()
    response = client_for(bob).post(f"/invitations/{invitation.pk}/decline", follow=True)
    assert b"You declined the invitation to Acme." in response.content
    assert not Membership.objects.filter(user=bob, organization=org_a).exists()
    assert alice_client.post("/api/v1/members", {"email": "carl@new.test"}, format="json").status_code == 201


@pytest.mark.django_db
def test_a_new_person_logs_in_with_the_initial_password_and_accepts(alice_client, org_a):
    alice_client.post(
        "/settings/members/", {"email": "nina@new.test", "role": "agent", "password": "a-first-pass-42"}
    )
    nina = User.objects.get(email="nina@new.test")
    assert not nina.memberships.exists()
    client = Client()
    assert (
        client.post("/login/", {"username": "nina@new.test", "password": "a-first-pass-42"}).status_code
        == 302
    )
    landing = client.get("/")
    assert landing.status_code == 403  # no organization yet...
    assert b"Acme</strong> invites you" in landing.content  # ...but the invitation is right there
    invitation = Invitation.objects.get(user=nina)
    client.post(f"/invitations/{invitation.pk}/accept")
    assert client.get("/").status_code == 200
    assert Membership.objects.filter(user=nina, organization=org_a, is_active=True).exists()


@pytest.mark.django_db
def test_someone_else_cannot_answer_an_invitation(alice_client, aaron_client, bob, bob_client, org_a):
    alice_client.post("/api/v1/members", {"email": "bob@globex.test"}, format="json")
    invitation = Invitation.objects.get()
    for client in (aaron_client, alice_client):
        assert client.post(f"/invitations/{invitation.pk}/accept").status_code == 404
        assert client.post(f"/invitations/{invitation.pk}/decline").status_code == 404
    invitation.refresh_from_db()
    assert invitation.is_pending


@pytest.mark.django_db
def test_admin_withdraws_an_invitation_and_outsiders_get_404(alice_client, bob_client, bob, client_for):
    alice_client.post("/api/v1/members", {"email": "bob@globex.test"}, format="json")
    invitation = Invitation.objects.get()
    assert bob_client.get(f"/api/v1/invitations/{invitation.pk}").status_code == 404
    assert bob_client.delete(f"/api/v1/invitations/{invitation.pk}").status_code == 404
    assert bob_client.post(f"/settings/invitations/{invitation.pk}/withdraw").status_code == 404
    assert alice_client.delete(f"/api/v1/invitations/{invitation.pk}").status_code == 204
    invitation.refresh_from_db()
    assert invitation.status == "withdrawn"
    assert client_for(bob).post(f"/invitations/{invitation.pk}/accept").status_code == 404


@pytest.mark.django_db
def test_agents_cannot_invite_or_see_invitations(aaron_client):
    assert aaron_client.post("/api/v1/members", {"email": "x@new.test"}, format="json").status_code == 403
    assert aaron_client.get("/api/v1/invitations").status_code == 403
    assert not Invitation.objects.exists()


@pytest.mark.django_db
def test_inviting_twice_keeps_one_pending_invitation_with_the_latest_role(alice_client, bob):
    alice_client.post("/api/v1/members", {"email": "bob@globex.test", "role": "agent"}, format="json")
    again = alice_client.post("/api/v1/members", {"email": "bob@globex.test", "role": "admin"}, format="json")
    assert again.status_code == 201
    assert list(Invitation.objects.values_list("role", "status")) == [("admin", "pending")]


@pytest.mark.django_db
def test_inviting_a_current_member_says_so(alice_client, aaron):
    response = alice_client.post("/api/v1/members", {"email": "aaron@acme.test"}, format="json")
    assert response.status_code == 400
    assert "already a member" in response.json()["detail"][0]


@pytest.mark.django_db
def test_a_username_equal_to_the_email_does_not_reveal_itself(alice_client, org_b):
    UserFactory(username="taken@new.test", email="other@new.test")
    response = alice_client.post("/api/v1/members", {"email": "taken@new.test"}, format="json")
    assert response.status_code == 201
    invited = Invitation.objects.get().user
    assert invited.email == "taken@new.test" and invited.username.startswith("taken@new.test-")


@pytest.mark.django_db
def test_a_pending_invitation_keeps_its_seat_from_a_reactivated_member(alice, aaron, bob, org_a, client_for):
    from tenancy import services
    from tenancy.services import SeatLimitReached

    org_a.seat_limit = 2
    org_a.save()
    services.do_set_member_active(aaron.memberships.get(), alice, False)
    # Alice, plus Bob's pending invitation: both seats are spoken for.
    client_for(alice).post("/api/v1/members", {"email": "bob@globex.test"}, format="json")
    with pytest.raises(SeatLimitReached, match="taken \\(members and pending invitations\\)"):
        services.do_set_member_active(aaron.memberships.get(), alice, True)
    response = client_for(bob).post(f"/invitations/{Invitation.objects.get().pk}/accept")
    assert response.status_code == 302
    assert Membership.objects.filter(user=bob, organization=org_a, is_active=True).exists()
