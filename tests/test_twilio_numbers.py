"""Who may send from which number, labels, defaults and the number pages."""

import pytest
from django.urls import reverse

from messaging import access
from messaging.labels import number_label
from messaging.models import MemberMessagingSettings, MessagingSettings, TwilioAccount
from tenancy.models import AuditLog, Membership, Role
from tests.factories import MembershipFactory, TeamFactory
from tests.factories_messaging import PhoneNumberFactory, TwilioAccountFactory


@pytest.fixture
def account_a(org_a):
    return TwilioAccountFactory(organization=org_a)


@pytest.fixture
def numbers(account_a):
    return {
        "assigned": PhoneNumberFactory(account=account_a, phone_number="+14155550101", label="Support – NY"),
        "team": PhoneNumberFactory(account=account_a, phone_number="+14155550102"),
        "other": PhoneNumberFactory(account=account_a, phone_number="+14155550103"),
        "voice": PhoneNumberFactory(account=account_a, phone_number="+14155550104", sms_capable=False),
        "gone": PhoneNumberFactory(account=account_a, phone_number="+14155550105", is_active=False),
    }


def membership(user, org):
    return Membership.objects.get(user=user, organization=org)


@pytest.mark.django_db
def test_an_agent_may_use_only_numbers_assigned_to_them_or_their_teams(org_a, aaron, numbers):
    m = membership(aaron, org_a)
    numbers["assigned"].assigned_members.add(m)
    team = TeamFactory(organization=org_a)
    team.members.add(m)
    numbers["team"].assigned_teams.add(team)
    numbers["voice"].assigned_members.add(m)
    assert set(access.numbers_usable_by(m)) == {numbers["assigned"], numbers["team"]}
    assert not access.may_send_from(m, numbers["other"])


@pytest.mark.django_db
def test_the_any_number_setting_lets_agents_use_every_sendable_number(org_a, aaron, numbers):
    MessagingSettings.objects.create(organization=org_a, agents_may_use_any_number=True)
    usable = set(access.numbers_usable_by(membership(aaron, org_a)))
    assert usable == {numbers["assigned"], numbers["team"], numbers["other"]}


@pytest.mark.django_db
def test_admins_may_use_every_sendable_number_but_not_voice_only_or_removed_ones(org_a, alice, numbers):
    usable = set(access.numbers_usable_by(membership(alice, org_a)))
    assert usable == {numbers["assigned"], numbers["team"], numbers["other"]}


@pytest.mark.django_db
def test_numbers_of_an_invalid_account_cannot_be_used(org_a, alice, numbers, account_a):
    TwilioAccount.objects.filter(pk=account_a.pk).update(status=TwilioAccount.Status.INVALID)
    assert not access.numbers_usable_by(membership(alice, org_a)).exists()


@pytest.mark.django_db
def test_a_deactivated_member_may_use_no_number(org_a, numbers):
    m = MembershipFactory(organization=org_a, role=Role.ADMIN, is_active=False)
    assert not access.numbers_usable_by(m).exists()


@pytest.mark.django_db
def test_default_sender_is_the_members_own_then_the_orgs(org_a, aaron, numbers):
    m = membership(aaron, org_a)
    numbers["assigned"].assigned_members.add(m)
    numbers["team"].assigned_members.add(m)
    MessagingSettings.objects.create(organization=org_a, default_number=numbers["assigned"])
    assert access.default_sender_for(m) == numbers["assigned"]
    MemberMessagingSettings.objects.create(organization=org_a, membership=m, default_number=numbers["team"])
    assert access.default_sender_for(m) == numbers["team"]
    # Unassigned from their own default: it no longer counts.
    numbers["team"].assigned_members.remove(m)
    assert access.default_sender_for(m) == numbers["assigned"]
    numbers["assigned"].assigned_members.remove(m)
    assert access.default_sender_for(m) is None


@pytest.mark.django_db
def test_number_label_shows_the_org_label_with_the_number(numbers):
    assert number_label(numbers["assigned"]) == "Support – NY · +1 415-555-0101"
    short = PhoneNumberFactory(
        account=numbers["assigned"].account, phone_number="55501", friendly_name="Alerts"
    )
    assert number_label(short) == "Alerts · 55501"


@pytest.mark.django_db
def test_admin_labels_a_number_and_assigns_it(alice_client, org_a, aaron, numbers):
    team = TeamFactory(organization=org_a, name="Sales East")
    number = numbers["other"]
    response = alice_client.post(
        reverse("settings-twilio-number", args=[number.pk]),
        {"op": "save", "label": "Sales East", "members": [membership(aaron, org_a).pk], "teams": [team.pk]},
        follow=True,
    )
    assert "Sales East · +1 415-555-0103 saved." in response.content.decode()
    number.refresh_from_db()
    assert number.label == "Sales East"
    assert list(number.assigned_members.all()) == [membership(aaron, org_a)]
    assert list(number.assigned_teams.all()) == [team]
    entry = AuditLog.objects.get(action="phone_number.updated", object_id=str(number.pk))
    assert entry.changes["label"] == ["", "Sales East"]


@pytest.mark.django_db
def test_a_number_page_can_be_opened_by_its_sid(alice_client, numbers):
    response = alice_client.get(reverse("settings-twilio-number", args=[numbers["other"].sid]))
    assert response.status_code == 200


@pytest.mark.django_db
def test_admin_sets_the_default_sender(alice_client, org_a, numbers):
    response = alice_client.post(
        "/settings/twilio/", {"op": "settings", "default_number": numbers["assigned"].pk}, follow=True
    )
    assert "Messaging settings saved." in response.content.decode()
    assert MessagingSettings.objects.get(organization=org_a).default_number == numbers["assigned"]
    assert 'data-testid="default-badge"' in response.content.decode()


@pytest.mark.django_db
def test_a_number_that_cannot_send_sms_is_not_offered_as_default(alice_client, org_a, numbers):
    html = alice_client.get("/settings/twilio/").content.decode()
    assert f'<option value="{numbers["voice"].pk}"' not in html
    assert f'<option value="{numbers["other"].pk}"' in html
    response = alice_client.post(
        "/settings/twilio/", {"op": "settings", "default_number": numbers["voice"].pk}
    )
    assert "Select a valid choice" in response.content.decode()
    assert not MessagingSettings.objects.filter(organization=org_a, default_number__isnull=False).exists()


@pytest.mark.django_db
def test_a_member_picks_a_personal_default_among_allowed_numbers(aaron_client, org_a, aaron, numbers):
    m = membership(aaron, org_a)
    numbers["assigned"].assigned_members.add(m)
    html = aaron_client.get("/profile/").content.decode()
    assert "Support – NY · +1 415-555-0101" in html
    assert "+1 415-555-0103" not in html  # not theirs

    aaron_client.post("/profile/default-number", {"default_number": numbers["assigned"].pk})
    assert MemberMessagingSettings.objects.get(membership=m).default_number == numbers["assigned"]

    response = aaron_client.post(
        "/profile/default-number", {"default_number": numbers["other"].pk}, follow=True
    )
    assert "You may not send from that number." in response.content.decode()
    assert MemberMessagingSettings.objects.get(membership=m).default_number == numbers["assigned"]


@pytest.mark.django_db
def test_a_member_without_numbers_is_told_to_ask_an_admin(aaron_client, numbers):
    assert "You may not send from any number yet" in aaron_client.get("/profile/").content.decode()


@pytest.mark.django_db
def test_agents_cannot_open_number_pages(aaron_client, numbers):
    assert aaron_client.get(reverse("settings-twilio-number", args=[numbers["other"].pk])).status_code == 403


@pytest.mark.django_db
def test_outsiders_get_404_on_number_and_account_pages(bob_client, numbers, account_a):
    assert bob_client.get(reverse("settings-twilio-number", args=[numbers["other"].pk])).status_code == 404
    assert bob_client.get(reverse("settings-twilio-number", args=[numbers["other"].sid])).status_code == 404
    url = reverse("settings-twilio-account", args=[account_a.pk])
    assert bob_client.post(url, {"op": "delete"}).status_code == 404
    assert TwilioAccount.objects.filter(pk=account_a.pk).exists()


@pytest.mark.django_db
def test_the_numbers_page_runs_a_constant_number_of_queries(
    alice_client, org_a, account_a, django_assert_max_num_queries
):
    for i in range(15):
        n = PhoneNumberFactory(account=account_a, phone_number=f"+1415555{1000 + i}")
        n.assigned_members.set(Membership.objects.filter(organization=org_a))
    with django_assert_max_num_queries(20):
        assert alice_client.get("/settings/twilio/").status_code == 200


# --- landing after login ----------------------------------------------------------------------


def login(client, username):
    return client.post(
        "/login/", {"username": username, "password": "correct horse battery staple"}, follow=True
    )


@pytest.mark.django_db
def test_an_admin_without_a_verified_account_lands_on_the_twilio_settings(client, alice):
    response = login(client, "alice")
    assert response.redirect_chain[-1][0] == "/settings/twilio/"
    # Later visits to home are not redirected again.
    assert client.get("/").status_code == 200


@pytest.mark.django_db
def test_an_admin_with_a_verified_account_lands_on_home(client, alice, account_a):
    response = login(client, "alice")
    assert response.redirect_chain[-1][0] == "/"


@pytest.mark.django_db
def test_an_agent_without_twilio_sees_a_notice_to_ask_an_admin(client, aaron):
    response = login(client, "aaron")
    assert response.redirect_chain[-1][0] == "/"
    assert "ask an admin of Acme to connect the organization's Twilio account" in response.content.decode()


@pytest.mark.django_db
def test_an_invalid_account_does_not_count_as_connected(client, alice, account_a):
    TwilioAccount.objects.filter(pk=account_a.pk).update(status=TwilioAccount.Status.INVALID)
    assert login(client, "alice").redirect_chain[-1][0] == "/settings/twilio/"


@pytest.mark.django_db
def test_a_login_to_another_page_does_not_redirect_a_later_home_visit(client, alice, monkeypatch):
    from messaging import landing

    response = client.post(
        "/login/?next=/settings/members/",
        {"username": "alice", "password": "correct horse battery staple"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == "/settings/members/"
    monkeypatch.setattr(landing, "LANDING_WINDOW_SECONDS", -1)
    assert client.get("/").status_code == 200


@pytest.mark.django_db
def test_admins_are_told_on_home_when_twilio_refused_an_account(alice_client, aaron_client, account_a):
    TwilioAccount.objects.filter(pk=account_a.pk).update(
        status=TwilioAccount.Status.INVALID, last_validation_result="Authentication failed."
    )
    TwilioAccountFactory(organization=account_a.organization)  # another, valid account
    html = alice_client.get("/").content.decode()
    assert f"Twilio account {account_a} needs attention: Authentication failed." in html
    assert "needs attention" not in aaron_client.get("/").content.decode()


@pytest.mark.django_db
def test_a_webhook_finds_its_account_from_the_account_sid(account_a, org_b):
    other = TwilioAccountFactory(organization=org_b)
    assert access.account_for_webhook(account_a.account_sid) == account_a
    assert access.account_for_webhook(other.account_sid).organization == org_b
    assert access.account_for_webhook("AC" + "0" * 32) is None
    assert access.account_for_webhook("") is None
