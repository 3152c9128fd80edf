"""POST /api/incoming-sms: verified, stored once per MessageSid, processed into the conversation; consent
keywords; blocked numbers; record matching; anything unverifiable is refused and stores nothing."""

import pytest
from django.db import connection

from crm.models import RecordPhone
from messaging.models import ConsentEvent, ConsentState, Conversation, InboundEvent, Message
from messaging.services.consent import contact_refusal, do_change_consent
from messaging.services.receiving import process_inbound_event
from messaging.signals import inbound_message_stored
from messaging.twilio.ingest import OK, inbound_event, store_events
from messaging.twilio.signatures import VerifiedAccount
from tests import receive_helpers
from tests.concurrency import run_together
from tests.factories_crm import ContactFactory, LeadFactory
from tests.factories_messaging import MessagingSettingsFactory, PhoneNumberFactory
from tests.markers import needs_postgres
from tests.receive_helpers import Line, post_inbound

# Fixtures shared by the receiving tests.
_fresh_token_cache = receive_helpers._fresh_token_cache
eager_tasks = receive_helpers.eager_tasks
sent_replies = receive_helpers.sent_replies

EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response />'
CUSTOMER = "+12025550142"


@pytest.fixture
def line(org_a):
    return Line(org_a)


@pytest.fixture
def stored_events():
    seen = []

    def receiver(sender, **kwargs):
        seen.append(kwargs)

    inbound_message_stored.connect(receiver)
    yield seen
    inbound_message_stored.disconnect(receiver)


def deliver(client, line, params, capture, token=None):
    with capture(execute=True):
        return post_inbound(client, token or line.token, params)


@pytest.mark.django_db
def test_an_inbound_text_is_acknowledged_with_empty_twiml_and_lands_in_its_conversation(
    client, line, eager_tasks, django_capture_on_commit_callbacks, stored_events
):
    params = line.inbound(CUSTOMER, "Is the house still available?")
    response = deliver(client, line, params, django_capture_on_commit_callbacks)
    assert response.status_code == 200
    assert response.content == EMPTY_TWIML and response["Content-Type"].startswith("text/xml")
    message = Message.objects.get(sid=params["MessageSid"])
    assert message.direction == "inbound" and message.status == "received" and message.source == "customer"
    assert message.body == "Is the house still available?" and message.organization_id == line.org.pk
    conversation = message.conversation
    assert (conversation.phone_number_id, conversation.customer_number) == (line.number.pk, CUSTOMER)
    assert conversation.last_message_preview == "Is the house still available?"
    assert conversation.last_message_direction == "inbound"
    assert InboundEvent.objects.get(message_sid=params["MessageSid"]).processed_at is not None
    # On PostgreSQL a batch of plain texts is filed in the inbox in its own transaction and says so.
    filed = {"filed": True} if connection.vendor == "postgresql" else {}
    assert stored_events == [
        {
            "message_id": message.pk,
            "conversation_id": conversation.pk,
            "organization_id": line.org.pk,
            "created_conversation": True,
            "blocked": False,
            "signal": inbound_message_stored,
            **filed,
        }
    ]


@pytest.mark.django_db
def test_five_deliveries_of_the_same_inbound_webhook_make_one_message(
    client, line, eager_tasks, django_capture_on_commit_callbacks, stored_events
):
    params = line.inbound(CUSTOMER, "hello")
    for _ in range(5):
        assert deliver(client, line, params, django_capture_on_commit_callbacks).status_code == 200
    assert Message.objects.filter(sid=params["MessageSid"]).count() == 1
    assert InboundEvent.objects.filter(message_sid=params["MessageSid"]).count() == 1
    assert Conversation.objects.filter(customer_number=CUSTOMER).count() == 1
    assert len(stored_events) == 1


@pytest.mark.django_db
def test_processing_the_same_event_twice_stores_one_message(client, line, django_capture_on_commit_callbacks):
    params = line.inbound(CUSTOMER, "hi")
    account = VerifiedAccount(line.account.pk, line.org.pk, line.sid)
    assert store_events([inbound_event(account, params)]) == [OK]
    assert store_events([inbound_event(account, params)]) == [OK]  # a repeat: acknowledged, nothing stored
    event = InboundEvent.objects.get(message_sid=params["MessageSid"])
    first = process_inbound_event(event.pk)
    InboundEvent.objects.filter(pk=event.pk).update(processed_at=None)
    assert process_inbound_event(event.pk).pk == first.pk
    assert Message.objects.filter(sid=params["MessageSid"]).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("problem", ["missing", "bad", "other_account", "unknown_account", "wrong_url"])
def test_an_unverifiable_inbound_webhook_gets_403_and_stores_nothing(
    client, line, org_b, problem, eager_tasks, django_capture_on_commit_callbacks
):
    other = Line(org_b)
    params = line.inbound(CUSTOMER, "hello")
    kwargs = {}
    token = line.token
    if problem == "missing":
        token = None
    elif problem == "bad":
        kwargs["signature"] = "c2lnbmF0dXJlIGJ5IG5vYm9keQ=="
    elif problem == "other_account":
        token = other.token  # signed by org B's account, claiming org A's AccountSid
    elif problem == "unknown_account":
        params["AccountSid"] = "AC" + "0" * 32
    elif problem == "wrong_url":
        kwargs["query"] = "tampered=1"
        kwargs["signature"] = receive_helpers.sign(
            line.token, "http://evil.example/api/incoming-sms?tampered=1", params
        )
    with django_capture_on_commit_callbacks(execute=True):
        response = post_inbound(client, token, params, **kwargs)
    assert response.status_code == 403
    assert not InboundEvent.objects.exists() and not Message.objects.exists()


@pytest.mark.django_db
def test_a_malformed_verified_form_gets_403(client, line):
    params = line.inbound(CUSTOMER, "hello")
    params["MessageSid"] = "not-a-sid"
    assert post_inbound(client, line.token, params).status_code == 403
    assert not InboundEvent.objects.exists()


@pytest.mark.django_db
def test_the_webhooks_answer_without_a_trailing_slash_redirect_and_only_to_post(client, line):
    assert client.get("/api/incoming-sms").status_code == 405
    assert client.post("/api/incoming-sms").status_code == 403
    assert client.post("/api/status-callback").status_code == 403


@pytest.mark.django_db
def test_a_rotated_token_is_honoured_at_once(client, line, eager_tasks, django_capture_on_commit_callbacks):
    assert (
        deliver(client, line, line.inbound(CUSTOMER, "one"), django_capture_on_commit_callbacks).status_code
        == 200
    )
    line.account.set_auth_token("f" * 32)
    line.account.save()
    assert (
        deliver(
            client, line, line.inbound(CUSTOMER, "two"), django_capture_on_commit_callbacks, "f" * 32
        ).status_code
        == 200
    )
    response = deliver(client, line, line.inbound(CUSTOMER, "three"), django_capture_on_commit_callbacks)
    assert response.status_code == 403  # the old token no longer verifies
    assert Message.objects.count() == 2


@pytest.mark.django_db
def test_a_messaging_service_pool_number_is_found_from_the_account(
    client, line, eager_tasks, django_capture_on_commit_callbacks
):
    pool_number = PhoneNumberFactory(account=line.account)
    params = line.inbound(
        CUSTOMER, "via the pool", To=pool_number.phone_number, MessagingServiceSid="MG" + "1" * 32
    )
    deliver(client, line, params, django_capture_on_commit_callbacks)
    assert Message.objects.get(sid=params["MessageSid"]).conversation.phone_number_id == pool_number.pk


@pytest.mark.django_db
def test_the_customer_number_is_matched_to_records_first_by_priority(
    client, line, eager_tasks, django_capture_on_commit_callbacks
):
    lead = LeadFactory(organization=line.org, mobile_phone=CUSTOMER)
    contact = ContactFactory(organization=line.org, mobile_phone=CUSTOMER)
    assert RecordPhone.objects.filter(organization=line.org, e164=CUSTOMER).count() == 2
    deliver(client, line, line.inbound(CUSTOMER, "hi"), django_capture_on_commit_callbacks)
    conversation = Conversation.objects.get(customer_number=CUSTOMER)
    matched = {(conversation.record_type, conversation.record_id)} | {
        (m["record_type"], m["record_id"]) for m in conversation.other_matches
    }
    assert matched == {("lead", lead.pk), ("contact", contact.pk)}
    assert len(conversation.other_matches) == 1


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_inbound_messages_from_one_number_make_one_conversation(org_a):
    line = Line(org_a)
    account = VerifiedAccount(line.account.pk, org_a.pk, line.sid)
    event_ids = []
    for i in range(8):
        store_events([inbound_event(account, line.inbound(CUSTOMER, f"text {i}"))])
    event_ids = list(InboundEvent.objects.values_list("id", flat=True))
    _processed, errors = run_together(process_inbound_event, event_ids)
    assert errors == []
    assert Conversation.objects.filter(customer_number=CUSTOMER).count() == 1
    assert Message.objects.filter(conversation__customer_number=CUSTOMER).count() == 8


# --- Consent keywords ---------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body", ["STOP", "stopall", " Unsubscribe ", "CANCEL", "end", "Quit", "REVOKE", "optout", "Stop."]
)
def test_each_opt_out_keyword_opts_the_number_out_for_the_whole_organization(
    client, line, body, eager_tasks, django_capture_on_commit_callbacks, sent_replies
):
    other_number = PhoneNumberFactory(account=line.account)
    params = line.inbound(CUSTOMER, body)
    deliver(client, line, params, django_capture_on_commit_callbacks)
    assert ConsentState.objects.get(organization=line.org, phone_number=CUSTOMER).opted_out
    assert "opted out" in contact_refusal(line.org, CUSTOMER)  # the one check for every sender of the org
    assert other_number.organization_id == line.org.pk
    event = ConsentEvent.objects.get(organization=line.org, phone_number=CUSTOMER)
    assert (event.action, event.method) == ("opt_out", "keyword")
    assert event.message == Message.objects.get(sid=params["MessageSid"])
    assert event.keyword == body.strip(" .").upper()
    assert sent_replies == []  # no confirmation configured


@pytest.mark.django_db
def test_twilios_opt_out_type_wins_over_the_body(
    client, line, eager_tasks, django_capture_on_commit_callbacks
):
    deliver(
        client, line, line.inbound(CUSTOMER, "Arrêtez", OptOutType="STOP"), django_capture_on_commit_callbacks
    )
    assert ConsentState.objects.get(phone_number=CUSTOMER).opted_out
    deliver(
        client, line, line.inbound(CUSTOMER, "STOP", OptOutType="START"), django_capture_on_commit_callbacks
    )
    assert not ConsentState.objects.get(phone_number=CUSTOMER).opted_out


@pytest.mark.django_db
def test_a_sentence_containing_stop_is_just_a_message(
    client, line, eager_tasks, django_capture_on_commit_callbacks
):
    deliver(
        client, line, line.inbound(CUSTOMER, "please stop by at noon"), django_capture_on_commit_callbacks
    )
    assert not ConsentEvent.objects.exists()
    assert contact_refusal(line.org, CUSTOMER) is None


@pytest.mark.django_db
def test_stop_then_start_opts_out_then_in_with_the_configured_replies(
    client, line, eager_tasks, django_capture_on_commit_callbacks, sent_replies
):
    MessagingSettingsFactory(
        organization=line.org, opt_out_reply="You are unsubscribed.", opt_in_reply="Welcome back."
    )
    deliver(client, line, line.inbound(CUSTOMER, "STOP"), django_capture_on_commit_callbacks)
    assert contact_refusal(line.org, CUSTOMER)
    deliver(client, line, line.inbound(CUSTOMER, "start"), django_capture_on_commit_callbacks)
    assert contact_refusal(line.org, CUSTOMER) is None
    assert list(ConsentEvent.objects.order_by("id").values_list("action", "keyword")) == [
        ("opt_out", "STOP"),
        ("opt_in", "START"),
    ]
    conversation = Conversation.objects.get(customer_number=CUSTOMER)
    assert [(c["source"], c["conversation"], c["body"]) for c in sent_replies] == [
        ("auto_reply", conversation, "You are unsubscribed."),
        ("auto_reply", conversation, "Welcome back."),
    ]
    assert all(c["org"] == line.org for c in sent_replies)


@pytest.mark.django_db
def test_help_gets_the_help_reply_and_a_ledger_row(
    client, line, eager_tasks, django_capture_on_commit_callbacks, sent_replies
):
    MessagingSettingsFactory(
        organization=line.org, help_reply="Acme Realty: call 555-0100. Reply STOP to opt out."
    )
    deliver(client, line, line.inbound(CUSTOMER, "HELP"), django_capture_on_commit_callbacks)
    assert [c["body"] for c in sent_replies] == ["Acme Realty: call 555-0100. Reply STOP to opt out."]
    assert ConsentEvent.objects.get().action == "help"
    assert contact_refusal(line.org, CUSTOMER) is None


@pytest.mark.django_db
def test_a_blocked_number_is_stored_but_raises_nothing_and_gets_no_reply(
    client, line, eager_tasks, django_capture_on_commit_callbacks, stored_events, sent_replies
):
    MessagingSettingsFactory(organization=line.org, help_reply="Help text")
    do_change_consent(line.org, CUSTOMER, "block", "agent")
    deliver(client, line, line.inbound(CUSTOMER, "HELP"), django_capture_on_commit_callbacks)
    assert Message.objects.filter(from_number=CUSTOMER).count() == 1
    assert [e["blocked"] for e in stored_events] == [True]
    assert sent_replies == []


@pytest.mark.django_db(transaction=True)  # foreign keys are checked at commit
def test_an_account_removed_while_its_token_is_cached_gets_403(client, line):
    primer = line.inbound(CUSTOMER, "one", MessageSid="bad")  # verified (token now cached), then refused
    assert post_inbound(client, line.token, primer).status_code == 403
    from messaging.models import TwilioAccount

    TwilioAccount.objects.filter(pk=line.account.pk).delete()  # the cached token still verifies
    assert post_inbound(client, line.token, line.inbound(CUSTOMER, "two")).status_code == 403
    assert InboundEvent.objects.count() == 0
