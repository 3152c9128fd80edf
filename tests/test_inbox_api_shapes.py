"""The inbox's hot lists build their items by hand from ``values()`` rows (docs/benchmarks.md, "Inbox"): each
item must stay exactly the documented shape (the live event's payload, ``MessageSerializer``), and every list
endpoint answers in a number of queries that does not grow with the page."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messaging.inbox import actions as inbox
from messaging.inbox import events
from messaging.inbox.api.serializers import MessageSerializer
from messaging.models import Conversation, ConversationUserState, Message, MessageStatus
from tests.factories import TeamFactory
from tests.factories_crm import LeadFactory
from tests.factories_messaging import MessageFactory, PhoneNumberFactory, TwilioAccountFactory, store_inbound


@pytest.fixture
def number(org_a):
    return PhoneNumberFactory(account=TwilioAccountFactory(organization=org_a), label="Front desk")


@pytest.fixture
def inbound(django_capture_on_commit_callbacks):
    def send(number, customer="+12025550147", body="Hello"):
        with django_capture_on_commit_callbacks(execute=True):
            return store_inbound(number, customer, body)

    return send


def _conversations(number, n, prefix="+1202555", **kwargs):
    now = timezone.now()
    return [
        Conversation.objects.create(
            organization=number.organization,
            phone_number=number,
            customer_number=f"{prefix}{i:04d}",
            last_message_at=now - timedelta(minutes=i),
            last_message_preview=f"preview {i}",
            **kwargs,
        )
        for i in range(n)
    ]


def _expected(conversation, unread=0, dismissed=False, record_name="", regarding_name=""):
    fresh = Conversation.objects.select_related("phone_number", "owner", "team").get(pk=conversation.pk)
    return {
        **events.conversation_payload(fresh),
        "unread": unread,
        "dismissed": dismissed,
        "record_name": record_name,
        "regarding_name": regarding_name,
    }


@pytest.mark.django_db
def test_a_listed_conversation_is_the_live_events_payload_plus_my_state(alice, aaron, alice_client, number):
    aaron.first_name, aaron.last_name = "Aaron", "Ames"
    aaron.save()
    team = TeamFactory(organization=number.organization, name="Sales")
    lead = LeadFactory(organization=number.organization, first_name="Lee", last_name="Ray")
    regarding = LeadFactory(organization=number.organization, first_name="Rita", last_name="Gard")
    owned, plain = _conversations(number, 2, owner=aaron, team=team)
    Conversation.objects.filter(pk=owned.pk).update(
        record_type="lead",
        record_id=lead.pk,
        regarding_type="lead",
        regarding_id=regarding.pk,
        last_message_direction="inbound",
        last_message_status="received",
    )
    alice.first_name = alice.last_name = ""
    alice.save()
    Conversation.objects.filter(pk=plain.pk).update(owner=alice, team=None)  # no full name: the username
    ConversationUserState.objects.create(
        organization=number.organization, conversation=owned, user=alice, unread_count=3
    )

    listed = {c["id"]: c for c in alice_client.get("/api/v1/conversations").json()["results"]}

    assert listed[owned.pk] == _expected(
        owned, unread=3, record_name=str(lead), regarding_name=str(regarding)
    )
    assert listed[owned.pk]["owner"] == {"id": aaron.pk, "name": "Aaron Ames"}
    assert listed[plain.pk] == _expected(plain)
    assert listed[plain.pk]["owner"] == {"id": alice.pk, "name": "alice"}
    assert alice_client.get(f"/api/v1/conversations/{owned.pk}").json() == listed[owned.pk]


@pytest.mark.django_db
def test_an_action_answers_with_the_same_item_as_the_list(alice_client, number, inbound):
    conversation = inbound(number).conversation
    archived = alice_client.post(f"/api/v1/conversations/{conversation.pk}/archive").json()
    assert archived == _expected(conversation, unread=1)  # alice was told of the first text
    assert archived["status"] == "archived"
    assert alice_client.get(f"/api/v1/conversations/{conversation.pk}").json() == archived


@pytest.mark.django_db
def test_a_thread_message_is_the_message_serializers_shape(alice, alice_client, number):
    conversation = _conversations(number, 1)[0]
    received = MessageFactory(conversation=conversation, body="Hi there", num_media=2)
    failed = MessageFactory(
        conversation=conversation,
        direction=Message.Direction.OUTBOUND,
        source=Message.Source.AGENT,
        status=MessageStatus.FAILED,
        sender=alice,
        error_code=21610,
        error_message="The customer replied STOP.",
    )

    results = alice_client.get(f"/api/v1/conversations/{conversation.pk}/messages").json()["results"]

    assert results == [MessageSerializer(m).data for m in (failed, received)]
    assert results[0]["created_at"].endswith("Z") and results[0]["sender"] == alice.pk


def _queries(client, url) -> int:
    client.get("/api/v1/inbox-settings")  # a session's first request saves the organization in it
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


@pytest.mark.django_db
def test_conversation_list_and_search_use_as_many_queries_for_1_row_as_for_40(
    aaron, aaron_client, alice_client, number, django_assert_max_num_queries
):
    _conversations(number, 1, prefix="+1303555", owner=aaron)
    urls = ["/api/v1/conversations", "/api/v1/conversations?q=preview", "/api/v1/conversations?q=303555"]
    few = {url: _queries(aaron_client, url) for url in urls}
    few_admin = _queries(alice_client, "/api/v1/conversations")
    _conversations(
        number, 40, prefix="+1404555", owner=aaron, team=TeamFactory(organization=number.organization)
    )
    assert {url: _queries(aaron_client, url) for url in urls} == few
    assert _queries(alice_client, "/api/v1/conversations") == few_admin
    with django_assert_max_num_queries(6):  # session, user, membership, inbox settings, the page (+1 spare)
        assert len(aaron_client.get("/api/v1/conversations").json()["results"]) == 41


@pytest.mark.django_db
def test_thread_sessions_notifications_and_my_messages_use_a_constant_number_of_queries(
    aaron, aaron_client, number, inbound, django_assert_num_queries
):
    first = inbound(number, "+12025550100", "one")
    conversation = first.conversation
    inbox.do_accept_conversation(conversation, aaron)
    thread = f"/api/v1/conversations/{conversation.pk}/messages"
    urls = [
        thread,
        f"/api/v1/conversations/{conversation.pk}/sessions",
        "/api/v1/notifications",
        "/api/v1/messages",
    ]

    before = {url: _queries(aaron_client, url) for url in urls}
    for i in range(12):
        inbound(number, f"+1202555011{i:02d}", f"first text {i}")
        inbound(number, "+12025550100", f"more {i}")
    after = {url: _queries(aaron_client, url) for url in urls}
    assert after == before
    with django_assert_num_queries(before[thread]):
        body = aaron_client.get(thread).json()
    assert len(body["results"]) == 13


@pytest.mark.django_db
def test_a_thread_page_is_one_query_and_still_404_for_outsiders_whatever_the_parameters(
    alice_client, bob_client, number, django_assert_num_queries
):
    conversation = _conversations(number, 1)[0]
    empty = _conversations(number, 1, prefix="+1505555")[0]
    MessageFactory(conversation=conversation)
    thread = f"/api/v1/conversations/{conversation.pk}/messages"
    alice_client.get("/api/v1/inbox-settings")
    with django_assert_num_queries(4):  # session, user, membership, the page (visibility is a semi-join)
        assert len(alice_client.get(thread).json()["results"]) == 1
    assert alice_client.get(f"/api/v1/conversations/{empty.pk}/messages").json()["results"] == []
    for query in ("", "?before=garbage", "?after=garbage", "?page_size=x", "?session=1"):
        assert bob_client.get(thread + query).status_code == 404, query
    assert alice_client.get(thread + "?before=garbage").status_code == 400
    assert alice_client.get("/api/v1/conversations/999999/messages").status_code == 404


@pytest.mark.django_db
def test_a_common_word_finds_the_most_recent_conversations_first(alice_client, number, monkeypatch):
    from messaging.inbox import search as inbox_search

    monkeypatch.setattr(inbox_search, "SEARCH_LIMIT", 3)
    monkeypatch.setattr(inbox_search, "RECENT_WINDOW", 4)
    conversations = _conversations(number, 8)
    for c in reversed(conversations):  # the oldest conversation gets the oldest message (lowest id)
        MessageFactory(conversation=c, body="About the deposit")
    MessageFactory(conversation=conversations[7], body="a rare word: zanzibar")

    found = {c["id"] for c in alice_client.get("/api/v1/conversations?q=deposit").json()["results"]}
    rare = {c["id"] for c in alice_client.get("/api/v1/conversations?q=zanzibar").json()["results"]}

    assert found == {c.pk for c in conversations[:3]}
    assert rare == {conversations[7].pk}


@pytest.mark.django_db
def test_a_record_name_search_finds_matched_and_regarding_records_of_every_type(alice_client, number, org_b):
    from tests.factories_crm import AccountFactory, ContactFactory

    account = AccountFactory(organization=number.organization, name="Quillfeather Holdings")
    contact = ContactFactory(organization=number.organization, first_name="Ada", last_name="Quillfeather")
    foreign = AccountFactory(organization=org_b, name="Quillfeather Abroad")
    matched, regarding, neither = _conversations(number, 3)
    Conversation.objects.filter(pk=matched.pk).update(record_type="account", record_id=account.pk)
    Conversation.objects.filter(pk=regarding.pk).update(regarding_type="contact", regarding_id=contact.pk)
    Conversation.objects.filter(pk=neither.pk).update(record_type="account", record_id=foreign.pk)

    found = alice_client.get("/api/v1/conversations?q=quillfeather").json()["results"]

    assert {c["id"] for c in found} == {matched.pk, regarding.pk}
    assert {c["record_name"] or c["regarding_name"] for c in found} == {str(account), str(contact)}
