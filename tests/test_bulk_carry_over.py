"""A record list's bulk "Reassign" asks, like one record's page, whether the records' conversations move with
them: carry them over to each record's new owner or end them; records without conversations ask nothing;
outsiders and agents who may not choose get 404."""

from __future__ import annotations

import pytest

from crm.models import Lead
from messaging.models import Conversation
from tenancy.models import Role
from tests.factories import MembershipFactory
from tests.factories_messaging import ConversationFactory, PhoneNumberFactory, TwilioAccountFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def amy(org_a):
    return MembershipFactory(organization=org_a, role=Role.AGENT, user__username="amy").user


@pytest.fixture
def number(org_a):
    return PhoneNumberFactory(account=TwilioAccountFactory(organization=org_a), label="Sales line")


def _lead(org, number, owner, phone, *, with_conversation=True):
    lead = Lead.objects.create(
        organization=org, first_name="Lead", last_name=phone[-4:], mobile_phone=phone, owner=owner
    )
    conversation = None
    if with_conversation:
        conversation = ConversationFactory(
            phone_number=number, customer_number=phone, owner=owner, record_type="lead", record_id=lead.pk
        )
    return lead, conversation


def test_bulk_reassign_asks_and_carries_every_conversation_over(org_a, number, aaron, amy, alice_client):
    first, c1 = _lead(org_a, number, aaron, "+12025550181")
    second, c2 = _lead(org_a, number, aaron, "+12025550182")
    quiet, _ = _lead(org_a, number, aaron, "+12025550183", with_conversation=False)
    response = alice_client.post(
        "/crm/leads/reassign", {"ids": [first.pk, second.pk, quiet.pk], "owner": amy.pk, "back": "page=1"}
    )
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(
        f"/inbox/carry-over?record_type=lead&record_id={first.pk}&record_id={second.pk}&next="
    )
    question = alice_client.get(location).content.decode()
    assert "2 leads have a new owner" in question
    assert "Carry over to the new owner" in question
    done = alice_client.post(location, {"carry_over": "yes"})
    assert done.status_code == 302 and done["Location"] == "/crm/leads/?page=1"
    for conversation in (c1, c2):
        conversation.refresh_from_db()
        assert conversation.owner == amy and conversation.is_current


def test_bulk_reassign_can_end_the_conversations_instead(org_a, number, aaron, amy, alice_client):
    first, c1 = _lead(org_a, number, aaron, "+12025550184")
    second, c2 = _lead(org_a, number, aaron, "+12025550185")
    location = alice_client.post("/crm/leads/reassign", {"ids": [first.pk, second.pk], "owner": amy.pk})[
        "Location"
    ]
    alice_client.post(location, {"carry_over": "no"})
    for conversation in (c1, c2):
        conversation.refresh_from_db()
        assert (conversation.is_current, conversation.status) == (False, Conversation.Status.ARCHIVED)


def test_bulk_reassign_of_records_without_conversations_asks_nothing(org_a, number, aaron, amy, alice_client):
    lead, _ = _lead(org_a, number, aaron, "+12025550186", with_conversation=False)
    response = alice_client.post("/crm/leads/reassign", {"ids": [lead.pk], "owner": amy.pk, "back": ""})
    assert response["Location"] == "/crm/leads/?"


def test_outsiders_get_404_from_the_bulk_question(org_a, number, aaron, amy, bob_client, alice_client):
    first, c1 = _lead(org_a, number, aaron, "+12025550187")
    second, _c2 = _lead(org_a, number, aaron, "+12025550188")
    url = f"/inbox/carry-over?record_type=lead&record_id={first.pk}&record_id={second.pk}"
    assert bob_client.get(url).status_code == 404
    assert bob_client.post(url, {"carry_over": "no"}).status_code == 404
    # An id that is not a record of the organization makes the whole question a 404.
    assert alice_client.get(f"{url}&record_id=99999999").status_code == 404
    assert alice_client.get(f"{url}&record_id=abc").status_code == 404
    c1.refresh_from_db()
    assert c1.is_current and c1.owner == aaron


def test_an_agent_is_asked_only_about_the_records_they_may_decide(
    org_a, number, alice, aaron, amy, client_for
):
    mine, my_conversation = _lead(org_a, number, aaron, "+12025550189")
    hers, her_conversation = _lead(org_a, number, alice, "+12025550190")
    Lead.objects.filter(pk=hers.pk).update(owner=aaron)  # Aaron owns the record, Alice its conversation
    hers.refresh_from_db()
    url = f"/inbox/carry-over?record_type=lead&record_id={mine.pk}&record_id={hers.pk}"
    Lead.objects.filter(pk=mine.pk).update(owner=amy)  # reassigned away: Aaron still owns its conversation
    page = client_for(aaron).get(url)
    assert page.status_code == 200
    # Amy (an agent who owns neither the records nor their conversations) may not choose.
    assert client_for(amy).get(f"/inbox/carry-over?record_type=lead&record_id={hers.pk}").status_code == 404
    client_for(aaron).post(url, {"carry_over": "yes"})
    my_conversation.refresh_from_db()
    her_conversation.refresh_from_db()
    assert my_conversation.owner == amy
    assert her_conversation.owner == aaron  # the record's owner may decide: carried over to him
