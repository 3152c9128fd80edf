"""The engine's shared seams: race-free conversations and the consent ledger."""

import pytest

from messaging.inbox.conversations import get_or_create_conversation
from messaging.models import ConsentEvent, ConsentState, Conversation
from messaging.services.consent import contact_refusal, do_change_consent
from tests.concurrency import run_together
from tests.factories_messaging import PhoneNumberFactory, TwilioAccountFactory
from tests.markers import needs_postgres


@pytest.fixture
def number(org_a):
    return PhoneNumberFactory(account=TwilioAccountFactory(organization=org_a))


@pytest.mark.django_db
def test_second_lookup_returns_the_same_conversation(number):
    first, created = get_or_create_conversation(number, "+12025550101")
    again, created_again = get_or_create_conversation(number, "+12025550101")
    assert created and not created_again
    assert first.pk == again.pk


@pytest.mark.django_db
def test_an_ended_conversation_makes_room_for_a_new_one(number):
    first, _ = get_or_create_conversation(number, "+12025550101")
    first.is_current = False
    first.save()
    second, created = get_or_create_conversation(number, "+12025550101")
    assert created and second.pk != first.pk


@pytest.mark.django_db
def test_a_conversation_created_meanwhile_is_found_when_the_caller_thought_there_was_none(number):
    # ``absent``: the caller read that there is none, so the insert is tried first; another request made
    # it in between: the insert does nothing (or fails in its savepoint) and the existing one is returned.
    first, _ = get_or_create_conversation(number, "+12025550102")
    again, created = get_or_create_conversation(
        number, "+12025550102", absent=True, last_message_preview="Hi there"
    )
    assert (again.pk, created) == (first.pk, False)
    assert Conversation.objects.filter(customer_number="+12025550102").count() == 1
    third, created = get_or_create_conversation(
        number, "+12025550103", absent=True, last_message_preview="Hi there"
    )
    assert created and third.pk != first.pk
    stored = Conversation.objects.get(pk=third.pk)
    assert (stored.last_message_preview, stored.customer_number, stored.is_current) == (
        "Hi there",
        "+12025550103",
        True,
    )
    assert stored.created_at is not None and third.created_at == stored.created_at
    third.last_message_preview = "Later"
    third.save()  # a saved row: an UPDATE, not a second INSERT
    assert Conversation.objects.get(pk=third.pk).last_message_preview == "Later"


@needs_postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("absent", [False, True])
def test_concurrent_first_messages_make_one_conversation(number, absent):
    results, errors = run_together(
        lambda _i: get_or_create_conversation(number, "+12025550199", absent=absent)[0].pk, range(8)
    )
    assert errors == []
    assert len(set(results)) == 1 and len(results) == 8
    assert Conversation.objects.filter(customer_number="+12025550199").count() == 1


@pytest.mark.django_db
def test_stop_then_start_is_ledgered_and_changes_who_may_be_texted(org_a, org_b, aaron):
    do_change_consent(org_a, "+12025550123", "opt_out", "keyword", keyword="STOP")
    assert "opted out" in contact_refusal(org_a, "+12025550123")
    assert contact_refusal(org_b, "+12025550123") is None  # consent is per organization
    do_change_consent(org_a, "+12025550123", "opt_in", "keyword", keyword="START")
    assert contact_refusal(org_a, "+12025550123") is None
    assert list(
        ConsentEvent.objects.filter(organization=org_a).order_by("id").values_list("action", "keyword")
    ) == [("opt_out", "STOP"), ("opt_in", "START")]


@pytest.mark.django_db
def test_do_not_contact_and_block_refuse_with_their_own_reason(org_a, aaron):
    do_change_consent(org_a, "+12025550124", "do_not_contact", "agent", actor=aaron)
    assert "do-not-contact" in contact_refusal(org_a, "+12025550124")
    do_change_consent(org_a, "+12025550125", "block", "agent", actor=aaron)
    assert "blocked" in contact_refusal(org_a, "+12025550125")
    assert ConsentState.objects.get(phone_number="+12025550125").blocked


@pytest.mark.django_db
def test_help_is_ledgered_without_changing_consent(org_a):
    do_change_consent(org_a, "+12025550126", "help", "keyword", keyword="HELP")
    assert contact_refusal(org_a, "+12025550126") is None
    assert ConsentEvent.objects.filter(action="help").count() == 1
