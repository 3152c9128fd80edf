"""Who sent a text, wherever a sender is shown: the conversation list (REST and the live
``conversation.updated``) carries the last message's source and automation name, "My messages" names the
agent or the automation, and the home page's recent conversations say "Automation: Open house: …"."""

from __future__ import annotations

import pytest

from messaging.inbox import events
from messaging.inbox.conversations import record_message
from messaging.labels import preview_sender
from messaging.models import Conversation, Message, MessageStatus
from tests.factories_messaging import PhoneNumberFactory, TwilioAccountFactory, store_inbound

pytestmark = pytest.mark.django_db
CUSTOMER = "+12025550161"


@pytest.fixture
def conversation(org_a, alice):
    number = PhoneNumberFactory(account=TwilioAccountFactory(organization=org_a))
    conversation = store_inbound(number, CUSTOMER, "Is it still available?").conversation
    Conversation.objects.filter(pk=conversation.pk).update(owner=alice)
    return Conversation.objects.get(pk=conversation.pk)


def _automation_text(conversation, body="Thanks for visiting the open house!"):
    return record_message(
        conversation,
        direction=Message.Direction.OUTBOUND,
        source=Message.Source.AUTOMATION,
        source_label="Open house",
        status=MessageStatus.SENT,
        from_number=conversation.phone_number.phone_number,
        to_number=conversation.customer_number,
        body=body,
    )


def test_the_conversation_list_names_the_automation_that_sent_the_last_text(conversation, alice_client):
    _automation_text(conversation)
    item = alice_client.get("/api/v1/conversations").json()["results"][0]
    assert item["last_message"]["source"] == "automation"
    assert item["last_message"]["source_label"] == "Open house"
    assert item["last_message"]["direction"] == "outbound"
    # The live event carries the same keys.
    conversation.refresh_from_db()
    assert events.conversation_payload(conversation)["last_message"] == {
        k: v for k, v in item["last_message"].items()
    }


def test_a_customers_reply_replaces_the_automations_name(conversation, alice_client):
    _automation_text(conversation)
    store_inbound(conversation.phone_number, CUSTOMER, "Yes please")
    last = alice_client.get("/api/v1/conversations").json()["results"][0]["last_message"]
    assert (last["source"], last["source_label"], last["preview"]) == ("customer", "", "Yes please")


def test_my_messages_names_the_agent_or_the_automation(conversation, alice, alice_client):
    _automation_text(conversation)
    record_message(
        conversation,
        direction=Message.Direction.OUTBOUND,
        source=Message.Source.API,
        sender=alice,
        status=MessageStatus.SENT,
        from_number=conversation.phone_number.phone_number,
        to_number=conversation.customer_number,
        body="I can show it at 5.",
    )
    rows = {m["body"]: m for m in alice_client.get("/api/v1/messages").json()["results"]}
    automated = rows["Thanks for visiting the open house!"]
    assert (automated["sender_name"], automated["source"], automated["source_label"]) == (
        "",
        "automation",
        "Open house",
    )
    assert rows["I can show it at 5."]["sender_name"] == alice.get_full_name()
    assert rows["Is it still available?"]["sender_name"] == ""


def test_my_messages_of_another_organization_stay_hidden(conversation, bob_client):
    _automation_text(conversation)
    assert bob_client.get("/api/v1/messages").json()["results"] == []


def test_the_home_page_names_the_automation_in_the_recent_conversations(conversation, alice_client):
    _automation_text(conversation)
    page = alice_client.get("/").content.decode()
    assert "Automation: Open house: Thanks for visiting the open house!" in page


def test_preview_sender_words():
    assert preview_sender("automation", "Open house") == "Automation: Open house"
    assert preview_sender("campaign", "") == "Campaign"
    assert preview_sender("api", "") == "You"
    assert preview_sender("agent", "") == "You"
