"""Consent keywords in the inbox, through the real webhook pipeline: an opt-out never raises a request nor a
"new texter" notification; opt-in and help keywords are texts like any other."""

import pytest

from messaging.inbox import actions as inbox
from messaging.models import ConsentState, Conversation, ConversationUserState, Message, Notification
from messaging.services.keywords import OPT_OUT_KEYWORDS
from tenancy.models import Role
from tests import receive_helpers
from tests.factories import MembershipFactory
from tests.receive_helpers import Line, post_inbound

_fresh_token_cache = receive_helpers._fresh_token_cache
eager_tasks = receive_helpers.eager_tasks

CUSTOMER = "+12025550163"


@pytest.fixture
def amy(org_a):
    return MembershipFactory(organization=org_a, role=Role.AGENT, user__username="amy").user


@pytest.fixture
def line(org_a):
    return Line(org_a)


@pytest.fixture
def published(monkeypatch):
    """Every live event published by messaging/inbox/events.py: (type, payload, users, conversations)."""
    sent = []

    def record(event_type, payload, *, user_ids=(), conversation_ids=(), event_id=None):
        sent.append((event_type, set(user_ids), set(conversation_ids)))

    monkeypatch.setattr("messaging.inbox.events.publish", record)
    return sent


@pytest.fixture
def text(client, line, eager_tasks, django_capture_on_commit_callbacks):
    """``text(body, **extra)``: the customer texts our number; the webhook stores it and it is processed."""

    def send(body: str, **extra) -> Message:
        params = line.inbound(CUSTOMER, body, **extra)
        with django_capture_on_commit_callbacks(execute=True):
            assert post_inbound(client, line.token, params).status_code == 200
        return Message.objects.get(sid=params["MessageSid"])

    return send


def open_notifications(conversation) -> dict[int, str]:
    return dict(
        Notification.objects.filter(conversation=conversation, cleared_at__isnull=True).values_list(
            "recipient_id", "kind"
        )
    )


def unread_total(conversation) -> int:
    return sum(
        ConversationUserState.objects.filter(conversation=conversation).values_list("unread_count", flat=True)
    )


def opted_out(org) -> bool:
    return ConsentState.objects.filter(organization=org, phone_number=CUSTOMER, opted_out=True).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("body", [*OPT_OUT_KEYWORDS, " stop\n", "Stop.", "ARRET"])
def test_an_opt_out_from_a_first_time_sender_raises_no_request_and_no_notification(
    org_a, alice, aaron, amy, text, published, body
):
    # "ARRET" is a custom keyword Twilio's Advanced Opt-Out recognised (it says so in OptOutType).
    extra = {"OptOutType": "STOP"} if body == "ARRET" else {}
    message = text(body, **extra)
    conversation = message.conversation
    assert opted_out(org_a)
    assert open_notifications(conversation) == {}
    assert unread_total(conversation) == 0
    assert not [users for kind, users, _ in published if kind.startswith("notification.")]
    # The thread's open viewers still see the STOP arrive.
    assert ("message.created", set(), {conversation.pk}) in published


@pytest.mark.django_db
def test_an_opt_out_in_an_unclaimed_conversation_raises_no_request(org_a, alice, aaron, text):
    conversation = text("Is the flat still free?").conversation
    assert set(open_notifications(conversation).values()) == {Notification.Kind.REQUEST}
    inbox.do_dismiss_conversation(conversation, alice)
    inbox.do_dismiss_conversation(conversation, aaron)
    text("STOP")
    assert open_notifications(conversation) == {}
    assert not ConversationUserState.objects.filter(conversation=conversation, dismissed=False).exists()


@pytest.mark.django_db
def test_an_opt_out_in_an_owned_conversation_tells_the_owner_only_even_when_idle(
    org_a, alice, aaron, amy, text, published
):
    conversation = text("Hello").conversation
    inbox.do_accept_conversation(conversation, aaron)
    ConversationUserState.objects.filter(conversation=conversation, user=aaron).update(last_active_at=None)
    published.clear()
    text("UNSUBSCRIBE")
    # Idle owner: a normal text would also offer "Assign to me" to everyone; an opt-out offers nothing.
    assert open_notifications(conversation) == {aaron.pk: Notification.Kind.MESSAGE}
    notified = {uid for kind, users, _ in published if kind == "notification.created" for uid in users}
    assert notified == {aaron.pk}


@pytest.mark.django_db
@pytest.mark.parametrize("body", ["START", "YES", "HELP", "INFO"])
def test_opt_in_and_help_keywords_from_a_first_time_sender_are_requests_like_any_text(
    org_a, alice, aaron, amy, text, body
):
    conversation = text(body).conversation
    assert open_notifications(conversation) == {
        alice.pk: Notification.Kind.REQUEST,
        aaron.pk: Notification.Kind.REQUEST,
        amy.pk: Notification.Kind.REQUEST,
    }
    assert not opted_out(org_a)


@pytest.mark.django_db
def test_after_stop_a_start_reaches_the_owner_like_any_text(org_a, alice, aaron, text):
    conversation = text("Hello").conversation
    inbox.do_accept_conversation(conversation, aaron)
    inbox.do_mark_conversation_read(conversation, aaron)
    text("STOP")
    text("START")
    assert not opted_out(org_a)
    assert open_notifications(conversation) == {aaron.pk: Notification.Kind.MESSAGE}
    assert ConversationUserState.objects.get(conversation=conversation, user=aaron).unread_count == 2
    assert Conversation.objects.filter(organization=org_a, customer_number=CUSTOMER).count() == 1
