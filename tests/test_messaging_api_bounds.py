"""The messaging API from the outside: ids past 64 bits, out-of-range settings, a Twilio token that cannot
be sent, unknown record fields — each a 400 naming what to fix (or a 404 for a path id), never a 500, and
nothing saved."""

import pytest

from crm.models import Case
from messaging.models import Conversation, MessagingSettings, TwilioAccount
from quicksend.bounded_ids import MAX_ID
from tests.factories_messaging import PhoneNumberFactory, TwilioAccountFactory, store_inbound

HUGE = str(MAX_ID + 1)  # 9223372036854775808: OverflowError in SQLite, out of bigint in PostgreSQL


@pytest.fixture
def number(org_a):
    return PhoneNumberFactory(account=TwilioAccountFactory(organization=org_a))


@pytest.fixture
def conversation(number):
    return store_inbound(number, "+12025550147", "Hello").conversation


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["number", "team", "owner"])
@pytest.mark.parametrize("value", [HUGE, "-1", "0", "abc", "²"])
def test_conversation_filters_refuse_an_id_out_of_range_naming_it(alice_client, conversation, name, value):
    response = alice_client.get(f"/api/v1/conversations?{name}={value}")
    assert response.status_code == 400, response.content
    assert name in response.json()


@pytest.mark.django_db
def test_conversation_filters_still_filter_by_id(alice_client, conversation, number):
    assert len(alice_client.get(f"/api/v1/conversations?number={number.pk}").json()["results"]) == 1
    assert alice_client.get(f"/api/v1/conversations?number={number.pk + 1}").json()["results"] == []


@pytest.mark.django_db
@pytest.mark.parametrize("value", [HUGE, "²"])
def test_my_messages_refuses_a_number_id_out_of_range(alice_client, conversation, value):
    response = alice_client.get(f"/api/v1/messages?number={value}")
    assert response.status_code == 400, response.content
    assert "number" in response.json()


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["2026-13-45", "2026-02-30T10:00", "0001-01-01T00:00+14:00", "soon"])
@pytest.mark.parametrize("name", ["date_from", "date_to"])
def test_my_messages_refuses_an_impossible_date_naming_it(alice_client, conversation, name, value):
    response = alice_client.get(f"/api/v1/messages?{name}={value}")
    assert response.status_code == 400, response.content
    assert "YYYY-MM-DD" in response.json()[name][0]


@pytest.mark.django_db
def test_my_messages_dates_still_filter(alice_client, conversation):
    assert len(alice_client.get("/api/v1/messages?date_from=2000-01-01").json()["results"]) == 1
    assert alice_client.get("/api/v1/messages?date_to=2000-01-01").json()["results"] == []


@pytest.mark.django_db
def test_a_thread_refuses_a_session_id_out_of_range(alice_client, conversation, bob_client):
    url = f"/api/v1/conversations/{conversation.pk}/messages?session={HUGE}"
    response = alice_client.get(url)
    assert response.status_code == 400 and "session" in response.json()
    assert bob_client.get(url).status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/conversations/{}",
        "/api/v1/conversations/{}/messages",
        "/api/v1/conversations/{}/sessions",
    ],
)
def test_a_path_id_out_of_range_is_404(alice_client, path):
    assert alice_client.get(path.format(HUGE)).status_code == 404


@pytest.mark.django_db
def test_marking_a_notification_with_an_id_out_of_range_is_404(alice_client):
    assert alice_client.post(f"/api/v1/notifications/{HUGE}/read").status_code == 404


@pytest.mark.django_db
def test_a_list_cursor_with_an_id_out_of_range_is_refused(alice_client, conversation):
    import base64

    cursor = base64.urlsafe_b64encode(f"2026-01-01T00:00:00+00:00|{HUGE}".encode()).decode()
    response = alice_client.get(f"/api/v1/conversations?cursor={cursor}")
    assert response.status_code == 400 and "cursor" in response.json()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url, payload, field",
    [
        ("/api/v1/conversations/bulk-reassign", {"ids": [int(HUGE)], "team": None}, "ids"),
        ("/api/v1/conversations/{conversation}/reassign", {"user": int(HUGE)}, "user"),
        ("/api/v1/conversations/{conversation}/reassign", {"team": int(HUGE)}, "team"),
        (
            "/api/v1/conversations/record-owner-change",
            {"record_type": "lead", "record_id": int(HUGE), "new_owner": None, "carry_over": True},
            "record_id",
        ),
        (
            "/api/v1/conversations/record-owner-change",
            {"record_type": "lead", "record_id": 1, "new_owner": int(HUGE), "carry_over": True},
            "new_owner",
        ),
        ("/api/v1/history-sync", {"number": int(HUGE)}, "number"),
        ("/api/v1/messages/preview", {"template": int(HUGE)}, "template"),
        ("/api/v1/messages/preview", {"record": {"type": "lead", "id": int(HUGE)}}, "record"),
        ("/api/v1/messages", {"conversation": int(HUGE), "body": "Hi"}, "conversation"),
        ("/api/v1/messages", {"record": {"type": "lead", "id": HUGE}, "body": "Hi"}, "record"),
        ("/api/v1/templates/render", {"body": "Hi", "record": {"type": "lead", "id": int(HUGE)}}, "record"),
    ],
)
def test_payload_ids_out_of_range_are_refused_naming_the_field(
    alice_client, conversation, url, payload, field
):
    response = alice_client.post(url.format(conversation=conversation.pk), payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["member_ids", "team_ids"])
def test_assigning_a_number_to_an_id_out_of_range_is_refused(alice_client, number, bob_client, field):
    url = f"/api/v1/numbers/{number.pk}"
    response = alice_client.patch(url, {field: [int(HUGE)]}, format="json")
    assert response.status_code == 400 and field in response.json()
    assert bob_client.patch(url, {field: [1]}, format="json").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    "method, url", [("patch", "/api/v1/messaging-settings"), ("put", "/api/v1/me/default-number")]
)
def test_a_default_number_id_out_of_range_is_refused(alice_client, method, url):
    response = getattr(alice_client, method)(url, {"default_number": int(HUGE)}, format="json")
    assert response.status_code == 400 and "default_number" in response.json()
    assert not MessagingSettings.objects.exclude(default_number=None).exists()


# --- a Twilio auth token that HTTP Basic authentication cannot carry ------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("token", ["令", "0123456789abcdef0123456789abcde令", "tok en"])
def test_connecting_with_a_token_twilio_could_never_accept_is_refused_in_plain_words(
    alice_client, twilio_sandbox, token
):
    response = alice_client.post(
        "/api/v1/twilio-accounts", {"account_sid": "AC" + "0" * 32, "auth_token": token}, format="json"
    )
    assert response.status_code == 400, response.content
    assert "letters and digits only" in response.json()["detail"][0]
    assert not TwilioAccount.objects.exists()


@pytest.mark.django_db
def test_replacing_a_token_with_one_twilio_could_never_accept_is_refused_and_nothing_changes(
    alice_client, bob_client, org_a, twilio_sandbox
):
    account = TwilioAccountFactory(organization=org_a, auth_token="stored-token")
    url = f"/api/v1/twilio-accounts/{account.pk}"
    response = alice_client.patch(url, {"auth_token": "令", "friendly_name": "Renamed"}, format="json")
    assert response.status_code == 400, response.content
    assert "letters and digits only" in response.json()["detail"][0]
    account.refresh_from_db()
    assert account.get_auth_token() == "stored-token" and account.friendly_name != "Renamed"
    assert bob_client.patch(url, {"auth_token": "令"}, format="json").status_code == 404


# --- create a record from a conversation ------------------------------------------------------------------


@pytest.mark.django_db
def test_creating_a_record_with_an_unknown_field_is_refused_naming_it(alice_client, bob_client, conversation):
    url = f"/api/v1/conversations/{conversation.pk}/create-record"
    payload = {"record_type": "case", "fields": {"nonexistent_field": "x"}}
    response = alice_client.post(url, payload, format="json")
    assert response.status_code == 400, response.content
    assert "nonexistent_field" in response.json()["fields"]
    assert not Case.objects.exists()
    conversation.refresh_from_db()
    assert conversation.regarding_id is None
    assert bob_client.post(url, payload, format="json").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fields, bad",
    [
        ({"subject": "Leak", "owner": int(HUGE)}, "owner"),
        ({"subject": "Leak", "owner": "nobody"}, "owner"),
        ({"subject": "Leak", "contact": 99999}, "contact"),
        ({"subject": "Leak", "organization": 1}, "organization"),
        ({"subject": "Leak", "status": "bogus"}, "status"),
    ],
)
def test_creating_a_record_with_a_bad_value_is_refused_naming_the_field(
    alice_client, conversation, fields, bad
):
    url = f"/api/v1/conversations/{conversation.pk}/create-record"
    response = alice_client.post(url, {"record_type": "case", "fields": fields}, format="json")
    assert response.status_code == 400, response.content
    assert bad in response.json()["fields"]
    assert not Case.objects.exists()


@pytest.mark.django_db
def test_the_service_refuses_fields_the_record_type_does_not_have(alice, conversation):
    from django.core.exceptions import ValidationError

    from messaging.inbox import actions as inbox

    with pytest.raises(ValidationError) as refused:
        inbox.do_create_record_from_conversation(conversation, alice, "case", {"nonexistent_field": "x"})
    assert "nonexistent_field" in refused.value.message_dict
    assert not Case.objects.exists() and not Conversation.objects.exclude(regarding_id=None).exists()


# --- a refused token on a list call ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/v1/twilio-accounts/{id}/refresh-numbers", "/api/v1/numbers/refresh"])
def test_refreshing_numbers_with_a_token_twilio_refuses_says_so_and_marks_the_account(
    alice_client, bob_client, org_a, twilio_sandbox, url
):
    sid, _token = twilio_sandbox.new_account()
    account = TwilioAccountFactory(organization=org_a, account_sid=sid, auth_token="0" * 32)
    response = alice_client.post(url.format(id=account.pk))
    assert response.status_code == 400, response.content
    assert response.json()["kind"] == "auth" and response.json()["code"] == 20003
    account.refresh_from_db()
    assert account.status == TwilioAccount.Status.INVALID
    if "{id}" in url:
        assert bob_client.post(url.format(id=account.pk)).status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query, name",
    [
        (f"conversation={HUGE}", "conversation"),
        ("conversation=²", "conversation"),
        (f"record_type=lead&record_id={HUGE}", "record_id"),
        ("record_type=lead", "record_id"),
        ("conversation=1&messages=²", "messages"),
    ],
)
def test_the_texting_context_refuses_ids_out_of_range_naming_them(alice_client, query, name):
    response = alice_client.get(f"/api/v1/texting?{query}")
    assert response.status_code == 400, response.content
    assert name in response.json()


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/v1/messages", "/api/v1/messages/export", "/api/v1/conversations"])
@pytest.mark.parametrize("name", ["status", "q", "text", "customer", "number"])
def test_a_filter_with_a_null_character_is_refused_by_name(alice_client, conversation, url, name):
    response = alice_client.get(f"{url}?{name}=x%00y")
    assert response.status_code == 400, response.content
    assert name in response.json()
