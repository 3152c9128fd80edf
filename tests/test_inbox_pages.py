"""The inbox's pages and the bits of API they added: who may open what (outsiders get 404), the carry-over
question after a record's owner changes, Settings → Inbox, notification preferences, the home summary, the
failed / awaiting-reply filters and the product's own error pages."""

from __future__ import annotations

import pytest
from django.urls import resolve

from crm.models import Lead
from messaging.inbox.events import notification_link
from messaging.models import Conversation, InboxSettings, MemberMessagingSettings, MessageStatus
from tenancy.models import Role
from tests.factories import MembershipFactory
from tests.factories_messaging import (
    ConversationFactory,
    MessageFactory,
    PhoneNumberFactory,
    TwilioAccountFactory,
    store_inbound,
)

pytestmark = pytest.mark.django_db
CUSTOMER = "+12025550147"


@pytest.fixture
def amy(org_a):
    return MembershipFactory(organization=org_a, role=Role.AGENT, user__username="amy").user


@pytest.fixture
def number(org_a):
    return PhoneNumberFactory(account=TwilioAccountFactory(organization=org_a), label="Sales line")


@pytest.fixture
def inbound(django_capture_on_commit_callbacks):
    def send(number, customer=CUSTOMER, body="Hello"):
        with django_capture_on_commit_callbacks(execute=True):
            return store_inbound(number, customer, body)

    return send


def test_a_notification_link_opens_its_conversation_in_the_inbox(number, inbound, alice_client):
    conversation = inbound(number).conversation
    link = notification_link("", None, conversation.pk)
    assert resolve(link).url_name == "inbox-conversation"
    page = alice_client.get(link)
    assert page.status_code == 200
    assert f'data-conversation-id="{conversation.pk}"'.encode() in page.content


def test_outsider_gets_404_for_another_orgs_conversation_page(number, inbound, bob_client):
    conversation = inbound(number).conversation
    assert bob_client.get(f"/inbox/conversations/{conversation.pk}").status_code == 404
    assert bob_client.get("/inbox/").status_code == 200  # their own, empty inbox


def test_agent_cannot_open_a_conversation_the_visibility_rules_hide(number, org_a, alice, aaron_client):
    InboxSettings.objects.create(organization=org_a, agent_visibility=InboxSettings.Visibility.OWN)
    hidden = ConversationFactory(phone_number=number, owner=alice)
    assert aaron_client.get(f"/inbox/conversations/{hidden.pk}").status_code == 404


def test_inbox_page_offers_the_tabs_the_visibility_rule_allows(org_a, aaron_client, alice_client):
    InboxSettings.objects.create(organization=org_a, agent_visibility=InboxSettings.Visibility.OWN)
    agent_tabs = aaron_client.get("/inbox/").content
    assert b'data-tab="mine"' in agent_tabs and b'data-tab="unassigned"' in agent_tabs
    assert b'data-tab="all"' not in agent_tabs  # under "own" All would show the same as Mine + Unassigned
    assert b'data-tab="all"' in alice_client.get("/inbox/").content


def test_the_conversation_list_filters_awaiting_reply_and_failed(number, alice_client, bob_client):
    waiting = ConversationFactory(phone_number=number)
    MessageFactory(conversation=waiting, body="Are you there?")
    failed = ConversationFactory(phone_number=number)
    MessageFactory(
        conversation=failed, direction="outbound", source="agent", status=MessageStatus.FAILED, body="Hi"
    )
    for conversation, last in ((waiting, "Are you there?"), (failed, "Hi")):
        message = conversation.messages.get()
        Conversation.objects.filter(pk=conversation.pk).update(
            last_message_at=message.created_at,
            last_message_preview=last,
            last_message_direction=message.direction,
            last_message_status=message.status,
        )

    def ids(query, client=alice_client):
        return [c["id"] for c in client.get(f"/api/v1/conversations?{query}").json()["results"]]

    assert ids("awaiting=true") == [waiting.pk]
    assert ids("failed=true&status=all") == [failed.pk]
    assert ids("failed=true&status=all", bob_client) == []


def test_the_bell_summary_counts_my_unread_texts_only(number, inbound, alice_client, bob_client):
    inbound(number, body="one")
    inbound(number, body="two")
    mine = alice_client.get("/api/v1/notifications/summary").json()
    assert mine["unread_total"] == 2 and mine["open_notifications"] >= 1
    assert (mine["desktop_notifications"], mine["notification_sound"]) == (False, False)
    assert bob_client.get("/api/v1/notifications/summary").json()["unread_total"] == 0


def test_a_member_saves_their_own_notification_preferences(alice, amy, alice_client):
    response = alice_client.post("/profile/notifications", {"desktop_notifications": "on"})
    assert response.status_code == 302
    mine = MemberMessagingSettings.objects.get(membership__user=alice)
    assert (mine.desktop_notifications, mine.notification_sound) == (True, False)
    assert not MemberMessagingSettings.objects.filter(membership__user=amy).exists()
    assert alice_client.get("/api/v1/notifications/summary").json()["desktop_notifications"] is True
    assert (
        b'name="desktop_notifications" data-ask-permission checked' in alice_client.get("/profile/").content
    )


def test_settings_inbox_page_saves_for_admins_and_refuses_agents(org_a, alice_client, aaron_client):
    form = {"agent_visibility": "team", "idle_timeout_minutes": "15", "session_timeout_minutes": "1440"}
    assert aaron_client.post("/settings/inbox/", form).status_code == 403
    response = alice_client.post("/settings/inbox/", form)
    assert response.status_code == 302
    saved = InboxSettings.objects.get(organization=org_a)
    assert (saved.agent_visibility, saved.idle_timeout_minutes) == ("team", 15)


def test_settings_inbox_page_names_the_field_to_fix(alice_client):
    form = {"agent_visibility": "team", "idle_timeout_minutes": "-3", "session_timeout_minutes": "1440"}
    response = alice_client.post("/settings/inbox/", form)
    assert response.status_code == 200
    assert b"Ensure this value is greater than or equal to 0." in response.content


def _lead_with_conversation(org, number, owner):
    lead = Lead.objects.create(
        organization=org, first_name="Jane", last_name="Doe", mobile_phone=CUSTOMER, owner=owner
    )
    conversation = ConversationFactory(
        phone_number=number, customer_number=CUSTOMER, owner=owner, record_type="lead", record_id=lead.pk
    )
    return lead, conversation


def test_reassigning_a_record_asks_about_its_conversations_and_carries_them_over(
    org_a, number, aaron, amy, alice_client
):
    lead, conversation = _lead_with_conversation(org_a, number, aaron)
    response = alice_client.post(f"/crm/leads/{lead.pk}/reassign", {"owner": amy.pk})
    assert response.status_code == 302
    assert response["Location"].startswith(f"/inbox/carry-over?record_type=lead&record_id={lead.pk}&next=")
    question = alice_client.get(response["Location"])
    assert b"Carry over to the new owner" in question.content
    done = alice_client.post(response["Location"], {"carry_over": "yes"})
    assert done.status_code == 302 and done["Location"] == f"/crm/leads/{lead.pk}/"
    conversation.refresh_from_db()
    assert conversation.owner == amy


def test_ending_the_conversations_instead_archives_them(org_a, number, aaron, amy, alice_client):
    lead, conversation = _lead_with_conversation(org_a, number, aaron)
    alice_client.post(f"/crm/leads/{lead.pk}/reassign", {"owner": amy.pk})
    url = f"/inbox/carry-over?record_type=lead&record_id={lead.pk}"
    alice_client.post(url, {"carry_over": "no"})
    conversation.refresh_from_db()
    assert (conversation.is_current, conversation.status) == (False, Conversation.Status.ARCHIVED)


def test_editing_a_record_without_conversations_asks_nothing(org_a, aaron, amy, alice_client):
    lead = Lead.objects.create(organization=org_a, first_name="Jane", last_name="Doe", owner=aaron)
    response = alice_client.post(f"/crm/leads/{lead.pk}/reassign", {"owner": amy.pk})
    assert response["Location"] == f"/crm/leads/{lead.pk}/"


def test_outsider_gets_404_from_the_carry_over_question(org_a, number, aaron, bob_client):
    lead, conversation = _lead_with_conversation(org_a, number, aaron)
    url = f"/inbox/carry-over?record_type=lead&record_id={lead.pk}"
    assert bob_client.get(url).status_code == 404
    assert bob_client.post(url, {"carry_over": "yes"}).status_code == 404
    conversation.refresh_from_db()
    assert conversation.owner == aaron


def test_carry_over_refuses_a_next_address_on_another_site(org_a, number, aaron, amy, alice_client):
    lead, _conversation = _lead_with_conversation(org_a, number, aaron)
    lead.owner = amy
    lead.save()
    url = f"/inbox/carry-over?record_type=lead&record_id={lead.pk}&next=https://evil.example/"
    response = alice_client.post(url, {"carry_over": "yes"})
    assert response["Location"] == f"/crm/leads/{lead.pk}/"


def test_an_agents_home_shows_their_open_conversations_unread_and_failed(number, aaron, aaron_client):
    mine = ConversationFactory(phone_number=number, owner=aaron, last_message_preview="See you at 5")
    MessageFactory(conversation=mine, direction="outbound", source="agent", status=MessageStatus.FAILED)
    Conversation.objects.filter(pk=mine.pk).update(last_message_at=mine.messages.get().created_at)
    home = aaron_client.get("/").content.decode()
    assert 'data-testid="open-count">1<' in home
    assert 'data-testid="failed-count">1<' in home
    assert "See you at 5" in home and f"/inbox/conversations/{mine.pk}" in home


def test_an_unknown_address_shows_the_products_own_404(alice_client):
    response = alice_client.get("/no/such/page/")
    assert response.status_code == 404
    assert b"There is nothing here" in response.content
    assert b"Using the URLconf" not in response.content  # not Django's debug listing


def test_record_page_says_yes_and_no(org_a, alice_client):
    lead = Lead.objects.create(organization=org_a, first_name="Jane", last_name="Doe", do_not_contact=False)
    page = alice_client.get(f"/crm/leads/{lead.pk}/").content.decode()
    assert "True" not in page and "False" not in page
    assert ">No<" in page and ">Yes<" in page  # do not contact: No; allow SMS: Yes


def test_an_agent_who_may_not_choose_gets_404_from_the_carry_over_question(
    org_a, number, alice, amy, client_for
):
    lead, conversation = _lead_with_conversation(org_a, number, alice)
    url = f"/inbox/carry-over?record_type=lead&record_id={lead.pk}"
    assert client_for(amy).get(url).status_code == 404  # neither admin nor owner of the record or its texts
    assert client_for(amy).post(url, {"carry_over": "no"}).status_code == 404
    conversation.refresh_from_db()
    assert conversation.is_current


def test_the_inbox_page_and_the_bell_cost_the_same_few_queries_however_many_conversations(
    number, alice, alice_client
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def cost(path):
        with CaptureQueriesContext(connection) as queries:
            assert alice_client.get(path).status_code == 200
        return len(queries)

    ConversationFactory(phone_number=number, owner=alice)
    for path in ("/inbox/", "/api/v1/notifications/summary", "/"):
        cost(path)  # the first request of a session also saves the session and fills caches
    few = (cost("/inbox/"), cost("/api/v1/notifications/summary"), cost("/"))
    for _ in range(20):
        ConversationFactory(phone_number=number, owner=alice)
    many = (cost("/inbox/"), cost("/api/v1/notifications/summary"), cost("/"))
    assert few == many
    assert many[0] <= 13 and many[1] <= 6 and many[2] <= 12, many
