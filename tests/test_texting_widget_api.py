"""The API behind the texting widget: the context of a record or conversation (who, may they be texted, from
which numbers), the member's composer settings, attachments for members, and the one message shape."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from messaging.inbox import events
from messaging.inbox.conversations import get_or_create_conversation
from messaging.models import ConsentState, MessageMedia, MessagingSettings
from tests.factories_crm import LeadFactory
from tests.factories_messaging import MessageFactory, PhoneNumberFactory, TwilioAccountFactory

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + b"\x00" * 20


@pytest.fixture
def number(org_a):
    return PhoneNumberFactory(account=TwilioAccountFactory(organization=org_a), label="Sales")


@pytest.fixture
def lead(org_a, alice):
    return LeadFactory(organization=org_a, owner=alice, first_name="Maria", last_name="Lopez")


def _context(client, lead):
    return client.get(f"/api/v1/texting?record_type=lead&record_id={lead.pk}")


@pytest.mark.django_db
def test_a_records_context_names_the_number_the_usable_senders_and_its_conversation(
    alice_client, lead, number
):
    conversation, _ = get_or_create_conversation(number, lead.mobile_phone_e164)
    MessagingSettings.objects.create(organization=lead.organization, default_number=number)

    answer = _context(alice_client, lead)

    assert answer.status_code == 200
    body = answer.json()
    assert body["record"] == {
        "type": "lead",
        "id": lead.pk,
        "name": "Maria Lopez",
        "url": lead.get_absolute_url(),
    }
    assert body["customer_number"] == lead.mobile_phone_e164
    assert (body["can_text"], body["refusal"]) == (True, None)
    assert [n["id"] for n in body["numbers"]] == [number.pk] and body["numbers"][0]["label"] == "Sales"
    assert body["default_number_id"] == number.pk
    assert body["reply_number_id"] == number.pk  # the number of the thread they are in
    assert body["conversation_id"] == conversation.pk
    assert body["conversations"][0]["phone_number"]["label"] == "Sales"
    assert body["limits"]["max_items"] == 10 and "image/png" in body["limits"]["accepted_types"]
    assert body["preferences"] == {"enter_sends": True}


@pytest.mark.django_db
def test_outsider_gets_404_for_another_organizations_record_and_conversation(bob_client, lead, number):
    conversation, _ = get_or_create_conversation(number, lead.mobile_phone_e164)
    assert _context(bob_client, lead).status_code == 404
    assert bob_client.get(f"/api/v1/texting?conversation={conversation.pk}").status_code == 404


@pytest.mark.django_db
def test_a_conversations_context_is_the_same_person_seen_from_the_inbox(alice_client, lead, number):
    conversation, _ = get_or_create_conversation(
        number, lead.mobile_phone_e164, record_type="lead", record_id=lead.pk
    )
    body = alice_client.get(f"/api/v1/texting?conversation={conversation.pk}").json()
    assert body["record"]["id"] == lead.pk and body["conversation_id"] == conversation.pk


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("setup", "code", "words"),
    [
        (
            lambda lead: ConsentState.objects.create(
                organization=lead.organization, phone_number=lead.mobile_phone_e164, opted_out=True
            ),
            "opted_out",
            "START",
        ),
        (
            lambda lead: ConsentState.objects.create(
                organization=lead.organization, phone_number=lead.mobile_phone_e164, blocked=True
            ),
            "blocked",
            "unblock",
        ),
        (
            lambda lead: ConsentState.objects.create(
                organization=lead.organization, phone_number=lead.mobile_phone_e164, do_not_contact=True
            ),
            "do_not_contact",
            "admin",
        ),
        (
            lambda lead: type(lead).objects.filter(pk=lead.pk).update(do_not_contact=True),
            "record_do_not_contact",
            "Edit",
        ),
        (lambda lead: type(lead).objects.filter(pk=lead.pk).update(allow_sms=False), "compliance", "Edit"),
        (
            lambda lead: type(lead).objects.filter(pk=lead.pk).update(mobile_phone="", mobile_phone_e164=""),
            "no_number",
            "add",
        ),
    ],
    ids=["opted-out", "blocked", "do-not-contact", "record-dnc", "compliance", "no-number"],
)
def test_a_person_who_may_not_be_texted_turns_the_composer_off_with_the_reason_and_what_to_do(
    alice_client, lead, number, setup, code, words
):
    setup(lead)
    body = _context(alice_client, lead).json()
    assert body["can_text"] is False
    assert body["refusal"]["code"] == code
    assert body["refusal"]["reason"] and words in body["refusal"]["next_step"]
    if code == "opted_out":
        assert body["consent"]["opted_out"] is True


@pytest.mark.django_db
def test_an_agent_with_no_number_to_send_from_is_told_to_ask_an_admin(aaron_client, lead, number):
    MessagingSettings.objects.create(organization=lead.organization, agents_may_use_any_number=False)
    body = _context(aaron_client, lead).json()
    assert body["numbers"] == []
    assert body["refusal"]["code"] == "no_sender" and "admin" in body["refusal"]["next_step"]


@pytest.mark.django_db
def test_bad_parameters_are_a_400_naming_the_field(alice_client):
    assert "record_type" in alice_client.get("/api/v1/texting?record_type=ship&record_id=1").json()
    assert "record_id" in alice_client.get("/api/v1/texting?record_type=lead&record_id=x").json()
    assert "conversation" in alice_client.get("/api/v1/texting?conversation=x").json()


@pytest.mark.django_db
def test_a_member_saves_whether_enter_sends(aaron_client, alice_client):
    assert aaron_client.get("/api/v1/me/composer-settings").json() == {"enter_sends": True}
    assert aaron_client.put("/api/v1/me/composer-settings", {"enter_sends": False}, format="json").json() == {
        "enter_sends": False
    }
    assert aaron_client.get("/api/v1/me/composer-settings").json() == {"enter_sends": False}
    assert alice_client.get("/api/v1/me/composer-settings").json() == {"enter_sends": True}  # per member
    refused = aaron_client.put("/api/v1/me/composer-settings", {}, format="json")
    assert refused.status_code == 400 and "enter_sends" in refused.json()


def _message_with_picture(number, sender=None, **kwargs):
    message = MessageFactory(conversation__phone_number=number, num_media=1, sender=sender, **kwargs)
    media = MessageMedia(
        organization=message.organization,
        message=message,
        filename="plan.png",
        content_type="image/png",
        size=len(PNG),
    )
    media.file.save("plan.png", ContentFile(PNG), save=False)
    media.save()
    return message, media


@pytest.mark.django_db
def test_a_member_opens_an_attachment_and_an_outsider_gets_404(alice_client, bob_client, number):
    _, media = _message_with_picture(number)
    answer = alice_client.get(f"/api/v1/media/{media.pk}")
    assert answer.status_code == 200 and answer["Content-Type"] == "image/png"
    assert b"".join(answer.streaming_content) == PNG
    assert answer["X-Content-Type-Options"] == "nosniff"
    assert bob_client.get(f"/api/v1/media/{media.pk}").status_code == 404


@pytest.mark.django_db
def test_a_live_message_is_the_thread_apis_item_key_for_key(alice, alice_client, number):
    alice.first_name, alice.last_name = "Alice", "Admin"
    alice.save()
    message, media = _message_with_picture(
        number, sender=alice, direction="outbound", source="agent", status="delivered", body="Plan attached"
    )
    item = alice_client.get(f"/api/v1/conversations/{message.conversation_id}/messages").json()["results"][0]
    assert events.message_payload(type(message).objects.get(pk=message.pk)) == item
    assert item["sender_name"] == "Alice Admin"
    assert item["media"] == [
        {
            "id": media.pk,
            "content_type": "image/png",
            "filename": "plan.png",
            "size": len(PNG),
            "url": f"/api/v1/media/{media.pk}",
            "error": "",
        }
    ]


@pytest.mark.django_db
def test_the_first_page_of_the_thread_rides_along_with_the_context(alice_client, lead, number):
    conversation, _ = get_or_create_conversation(number, lead.mobile_phone_e164)
    for n in range(3):
        MessageFactory(conversation=conversation, body=f"Text {n}")
    thread = alice_client.get(f"/api/v1/conversations/{conversation.pk}/messages?page_size=2").json()

    with_page = alice_client.get(f"/api/v1/texting?record_type=lead&record_id={lead.pk}&messages=2").json()

    assert with_page["messages"] == thread
    assert [m["body"] for m in with_page["messages"]["results"]] == ["Text 2", "Text 1"]
    assert _context(alice_client, lead).json()["messages"] is None
    refused = alice_client.get(f"/api/v1/texting?record_type=lead&record_id={lead.pk}&messages=500")
    assert refused.status_code == 400 and "messages" in refused.json()


@pytest.mark.django_db
def test_the_context_of_a_conversation_shows_that_conversation_even_when_another_is_newer(
    alice_client, lead, number, org_a
):
    older, _ = get_or_create_conversation(number, lead.mobile_phone_e164)
    other_number = PhoneNumberFactory(account=number.account, label="Support")
    newer, _ = get_or_create_conversation(other_number, lead.mobile_phone_e164)
    MessageFactory(conversation=newer, body="newest")
    body = alice_client.get(f"/api/v1/texting?conversation={older.pk}&messages=5").json()
    assert body["conversation_id"] == older.pk
    assert {c["id"] for c in body["conversations"]} == {older.pk, newer.pk}
    assert body["messages"]["results"] == []
