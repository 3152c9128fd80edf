"""Who is notified of what: first texts (Accept / Dismiss / Block), the idle-timeout handover, Assign to me,
reassignment and carry-over on a record's owner change; unread counts and sessions."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from messaging.inbox import actions as inbox
from messaging.models import (
    ConsentEvent,
    ConsentState,
    Conversation,
    ConversationUserState,
    InboxSettings,
    Message,
    MessageSession,
    Notification,
)
from tenancy.models import AuditLog, Role
from tests.concurrency import run_together
from tests.factories import MembershipFactory, TeamFactory
from tests.factories_crm import LeadFactory
from tests.factories_messaging import PhoneNumberFactory, TwilioAccountFactory, store_inbound, store_outbound
from tests.markers import needs_postgres

CUSTOMER = "+12025550147"


@pytest.fixture
def amy(org_a):
    return MembershipFactory(organization=org_a, role=Role.AGENT, user__username="amy").user


@pytest.fixture
def number(org_a):
    return PhoneNumberFactory(account=TwilioAccountFactory(organization=org_a))


@pytest.fixture
def published(monkeypatch):
    """Every live event published by messaging/inbox/events.py: (type, payload, users, conversations)."""
    sent = []

    def record(event_type, payload, *, user_ids=(), conversation_ids=(), event_id=None):
        sent.append((event_type, payload, set(user_ids), set(conversation_ids)))

    monkeypatch.setattr("messaging.inbox.events.publish", record)
    return sent


@pytest.fixture
def inbound(django_capture_on_commit_callbacks):
    """``inbound(number, customer, body)``: store a text, run the after-commit receivers."""

    def send(number, customer=CUSTOMER, body="Hello", **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return store_inbound(number, customer, body, **kwargs)

    return send


def open_notifications(conversation) -> dict[int, str]:
    return dict(
        Notification.objects.filter(conversation=conversation, cleared_at__isnull=True).values_list(
            "recipient_id", "kind"
        )
    )


def unread(conversation, user) -> int:
    state = ConversationUserState.objects.filter(conversation=conversation, user=user).first()
    return state.unread_count if state else 0


def notified_users(published, event_type="notification.created") -> set[int]:
    return {uid for kind, _payload, users, _convs in published if kind == event_type for uid in users}


def make_idle(conversation, user, minutes=10):
    ConversationUserState.objects.filter(conversation=conversation, user=user).update(
        last_active_at=timezone.now() - timedelta(minutes=minutes)
    )


@pytest.mark.django_db
def test_first_text_is_a_request_to_everyone_who_may_see_it(
    number, alice, aaron, amy, bob, inbound, published
):
    message = inbound(number, body="Is the flat still free?")
    conversation = message.conversation
    assert open_notifications(conversation) == {
        alice.pk: Notification.Kind.REQUEST,
        aaron.pk: Notification.Kind.REQUEST,
        amy.pk: Notification.Kind.REQUEST,
    }
    assert notified_users(published) == {alice.pk, aaron.pk, amy.pk}  # never bob (another organization)
    assert {unread(conversation, u) for u in (alice, aaron, amy)} == {1}
    created = next(p for kind, p, *_ in published if kind == "notification.created")
    assert created["notification"]["actions"] == ["accept", "dismiss", "block"]
    assert created["notification"]["preview"] == "Is the flat still free?"
    assert created["notification"]["link"] == f"/inbox/conversations/{conversation.pk}"
    assert created["unread_total"] == 1
    message_event = next(p for kind, p, _u, convs in published if kind == "message.created")
    assert message_event["message"]["body"] == "Is the flat still free?"


@pytest.mark.django_db
def test_a_first_text_is_a_request_even_when_the_pipeline_preset_an_owner(number, alice, aaron, inbound):
    conversation = inbound(number, owner=aaron).conversation
    assert open_notifications(conversation) == {
        alice.pk: Notification.Kind.REQUEST,
        aaron.pk: Notification.Kind.REQUEST,
    }
    inbox.do_accept_conversation(conversation, aaron)  # the preset owner accepts
    assert open_notifications(conversation) == {}


@pytest.mark.django_db
def test_a_notification_links_to_the_matched_record(number, alice, inbound, published):
    lead = LeadFactory(organization=number.organization, mobile_phone=CUSTOMER)
    conversation, _ = Conversation.objects.get_or_create(
        organization=number.organization,
        phone_number=number,
        customer_number=CUSTOMER,
        defaults={"record_type": "lead", "record_id": lead.pk},
    )
    inbound(number)
    created = next(p for kind, p, *_ in published if kind == "notification.created")
    assert created["notification"]["link"] == lead.get_absolute_url()
    assert created["notification"]["record_id"] == lead.pk
    assert conversation.pk == created["notification"]["conversation_id"]


@pytest.mark.django_db
def test_accept_makes_the_owner_and_clears_everyone_elses_request(
    number, alice, aaron, amy, inbound, published
):
    conversation = inbound(number).conversation
    published.clear()
    inbox.do_accept_conversation(conversation, aaron)
    conversation.refresh_from_db()
    assert conversation.owner == aaron
    assert open_notifications(conversation) == {}
    assert notified_users(published, "notification.cleared") == {alice.pk, aaron.pk, amy.pk}
    assert AuditLog.objects.filter(action="conversation.accepted", actor=aaron).exists()
    with pytest.raises(inbox.Conflict):
        inbox.do_accept_conversation(conversation, amy)


@pytest.mark.django_db
def test_while_the_owner_is_active_only_the_owner_is_notified(number, alice, aaron, amy, inbound, published):
    conversation = inbound(number).conversation
    inbox.do_accept_conversation(conversation, aaron)
    published.clear()
    inbound(number, body="second")
    assert open_notifications(conversation) == {aaron.pk: Notification.Kind.MESSAGE}
    assert notified_users(published) == {aaron.pk}
    assert unread(conversation, aaron) == 2 and unread(conversation, amy) == 0


@pytest.mark.django_db
def test_after_the_idle_timeout_everyone_who_may_see_it_may_assign_it(
    number, alice, aaron, amy, inbound, published
):
    conversation = inbound(number).conversation
    inbox.do_accept_conversation(conversation, aaron)
    make_idle(conversation, aaron, minutes=6)  # the default idle timeout is 5 minutes
    published.clear()
    inbound(number, body="anyone there?")
    assert open_notifications(conversation) == {
        aaron.pk: Notification.Kind.MESSAGE,
        alice.pk: Notification.Kind.IDLE,
        amy.pk: Notification.Kind.IDLE,
    }
    idle = next(p for k, p, users, _ in published if k == "notification.created" and amy.pk in users)
    assert idle["notification"]["actions"] == ["view", "assign"]


@pytest.mark.django_db
def test_idle_handover_goes_to_the_team_when_a_team_owns_it(
    number, org_a, alice, aaron, amy, inbound, published
):
    team = TeamFactory(organization=org_a, name="Lettings")
    team.members.add(amy.memberships.get())
    conversation = inbound(number).conversation
    inbox.do_accept_conversation(conversation, aaron)
    Conversation.objects.filter(pk=conversation.pk).update(team=team)
    InboxSettings.objects.create(organization=org_a, idle_timeout_minutes=30)
    make_idle(conversation, aaron, minutes=20)
    inbound(number, body="still within 30 minutes")
    assert open_notifications(conversation) == {aaron.pk: Notification.Kind.MESSAGE}
    make_idle(conversation, aaron, minutes=31)
    published.clear()
    inbound(number, body="now idle")
    assert open_notifications(conversation) == {
        aaron.pk: Notification.Kind.MESSAGE,
        amy.pk: Notification.Kind.IDLE,  # the team, not alice
    }
    assert notified_users(published) == {aaron.pk, amy.pk}


@pytest.mark.django_db
def test_assign_to_me_needs_a_confirmation_and_is_audited(number, alice, aaron, amy, inbound, published):
    conversation = inbound(number).conversation
    inbox.do_accept_conversation(conversation, aaron)
    make_idle(conversation, aaron)
    inbound(number, body="hello?")
    with pytest.raises(inbox.NeedsConfirmation) as asked:
        inbox.do_assign_conversation_to_me(conversation, amy)
    assert f"{aaron.get_full_name()} owns this conversation and has been idle" in asked.value.message
    conversation.refresh_from_db()
    assert conversation.owner == aaron
    published.clear()
    inbox.do_assign_conversation_to_me(conversation, amy, confirm=True)
    conversation.refresh_from_db()
    assert conversation.owner == amy
    entry = AuditLog.objects.get(action="conversation.assigned")
    assert entry.actor == amy and entry.changes["owner"] == [aaron.pk, amy.pk] and entry.changes["confirmed"]
    # alice's "Assign to me" offer is gone; aaron and amy hear of the new owner.
    assert Notification.Kind.IDLE not in open_notifications(conversation).values()
    updated_for = {u for k, _p, users, _c in published if k == "conversation.updated" for u in users}
    assert {aaron.pk, amy.pk} <= updated_for


@pytest.mark.django_db
def test_dismiss_hides_it_for_that_user_only_until_a_new_text(number, alice, aaron, amy, inbound, published):
    conversation = inbound(number).conversation
    inbox.do_dismiss_conversation(conversation, alice)
    assert open_notifications(conversation) == {
        aaron.pk: Notification.Kind.REQUEST,
        amy.pk: Notification.Kind.REQUEST,
    }
    assert unread(conversation, alice) == 0
    published.clear()
    inbound(number, body="again")
    assert open_notifications(conversation)[alice.pk] == Notification.Kind.REQUEST
    assert not ConversationUserState.objects.get(conversation=conversation, user=alice).dismissed
    assert alice.pk in notified_users(published)


@pytest.mark.django_db
def test_block_blocks_the_number_for_everyone_and_later_texts_raise_nothing(
    number, alice, aaron, amy, inbound, published
):
    conversation = inbound(number).conversation
    inbox.do_block_conversation(conversation, aaron)
    assert ConsentState.objects.get(organization=number.organization, phone_number=CUSTOMER).blocked
    event = ConsentEvent.objects.get(phone_number=CUSTOMER)
    assert (event.action, event.method, event.actor) == ("block", "agent", aaron)
    assert open_notifications(conversation) == {}
    published.clear()
    later = inbound(number, body="let me in")
    assert Message.objects.filter(pk=later.pk).exists()  # stored ...
    assert open_notifications(conversation) == {}  # ... but raises nothing
    assert notified_users(published) == set()
    assert {unread(conversation, u) for u in (alice, aaron, amy)} == {0}


@pytest.mark.django_db
def test_reassign_to_a_user_notifies_the_new_owner(number, alice, aaron, amy, inbound, published):
    conversation = inbound(number).conversation
    inbox.do_accept_conversation(conversation, aaron)
    published.clear()
    inbox.do_reassign_conversation(conversation, aaron, user=amy)
    conversation.refresh_from_db()
    assert conversation.owner == amy
    assert open_notifications(conversation) == {amy.pk: Notification.Kind.ASSIGNED}
    assert notified_users(published) == {amy.pk}
    assert AuditLog.objects.filter(action="conversation.reassigned", actor=aaron).exists()
    # The new owner sees the whole history (the same conversation and its messages).
    assert Message.objects.filter(conversation=conversation).count() == 1


@pytest.mark.django_db
def test_reassign_to_a_team_notifies_its_members(number, org_a, alice, aaron, amy, inbound, published):
    team = TeamFactory(organization=org_a)
    team.members.add(amy.memberships.get(), aaron.memberships.get())
    conversation = inbound(number).conversation
    inbox.do_accept_conversation(conversation, alice)
    published.clear()
    inbox.do_reassign_conversation(conversation, alice, team=team)
    conversation.refresh_from_db()
    assert conversation.team == team
    assert notified_users(published) == {aaron.pk, amy.pk}


@pytest.mark.django_db
def test_only_an_admin_or_the_owner_may_reassign(number, alice, aaron, amy, inbound):
    conversation = inbound(number).conversation
    inbox.do_accept_conversation(conversation, aaron)
    with pytest.raises(PermissionDenied):
        inbox.do_reassign_conversation(conversation, amy, user=amy)
    inbox.do_reassign_conversation(conversation, alice, user=amy)


@pytest.mark.django_db
def test_bulk_reassign_moves_every_conversation(number, alice, aaron, amy, inbound):
    first = inbound(number, "+12025550101").conversation
    second = inbound(number, "+12025550102").conversation
    changed = inbox.do_bulk_reassign_conversations([first, second], alice, user=amy)
    assert changed == 2
    assert set(Conversation.objects.filter(owner=amy).values_list("pk", flat=True)) == {first.pk, second.pk}


@pytest.fixture
def lead_conversation(number, aaron, inbound):
    lead = LeadFactory(organization=number.organization, owner=aaron, mobile_phone=CUSTOMER)
    conversation = inbound(number).conversation
    Conversation.objects.filter(pk=conversation.pk).update(record_type="lead", record_id=lead.pk, owner=aaron)
    return lead, conversation


@pytest.mark.django_db
def test_carry_over_moves_the_conversations_to_the_new_owner(
    number, alice, aaron, amy, lead_conversation, inbound, published
):
    lead, conversation = lead_conversation
    published.clear()
    changed = inbox.do_change_record_owner_conversations(lead, amy, carry_over=True, actor=alice)
    assert changed == 1
    conversation.refresh_from_db()
    assert conversation.owner == amy and conversation.is_current
    assert open_notifications(conversation) == {amy.pk: Notification.Kind.ASSIGNED}
    assert notified_users(published) == {amy.pk}
    # The next text continues the same thread, now amy's.
    assert inbound(number, body="hi again").conversation_id == conversation.pk


@pytest.mark.django_db
def test_without_carry_over_the_conversation_ends_and_the_next_text_starts_a_new_one(
    number, alice, aaron, amy, lead_conversation, inbound, published
):
    lead, conversation = lead_conversation
    published.clear()
    changed = inbox.do_change_record_owner_conversations(lead, amy, carry_over=False, actor=alice)
    assert changed == 1
    conversation.refresh_from_db()
    assert not conversation.is_current and conversation.status == "archived" and conversation.owner == aaron
    assert open_notifications(conversation) == {}
    assert notified_users(published) == set()
    assert AuditLog.objects.filter(action="conversation.ended").exists()
    fresh = inbound(number, body="new topic").conversation
    assert fresh.pk != conversation.pk and fresh.owner is None
    assert set(open_notifications(fresh)) == {alice.pk, aaron.pk, amy.pk}  # a new request


@pytest.mark.django_db
def test_carry_over_refuses_an_owner_from_another_organization(lead_conversation, alice, bob):
    lead, _ = lead_conversation
    with pytest.raises(ValidationError):
        inbox.do_change_record_owner_conversations(lead, bob, carry_over=True, actor=alice)


@pytest.mark.django_db
def test_who_may_carry_over_or_end_a_records_conversations_is_the_services_rule(
    lead_conversation, alice, aaron, amy, bob
):
    lead, conversation = lead_conversation
    for outsider in (amy, bob, None):  # an unrelated agent, another organization's admin, nobody
        with pytest.raises(PermissionDenied):
            inbox.do_change_record_owner_conversations(lead, amy, carry_over=False, actor=outsider)
    conversation.refresh_from_db()
    assert conversation.is_current and conversation.owner == aaron
    # The conversations' (and here also the record's) owner hands them over.
    assert inbox.do_change_record_owner_conversations(lead, amy, carry_over=True, actor=aaron) == 1


@pytest.mark.django_db
def test_replying_marks_the_thread_read_and_counts_as_activity(
    number, aaron, inbound, published, django_capture_on_commit_callbacks
):
    conversation = inbound(number).conversation
    inbox.do_accept_conversation(conversation, aaron)
    inbound(number, body="two")
    make_idle(conversation, aaron)
    assert unread(conversation, aaron) == 2
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        reply = store_outbound(conversation, aaron, "On my way")
    state = ConversationUserState.objects.get(conversation=conversation, user=aaron)
    assert state.unread_count == 0
    assert state.last_active_at > timezone.now() - timedelta(minutes=1)
    created = next(p for k, p, _u, convs in published if k == "message.created")
    assert created["message"]["id"] == reply.pk and conversation.pk in next(
        convs for k, _p, _u, convs in published if k == "message.created"
    )


@pytest.mark.django_db
def test_messages_are_grouped_in_sessions_of_the_session_timeout(number, org_a, aaron, inbound):
    InboxSettings.objects.create(organization=org_a, session_timeout_minutes=60)
    first = inbound(number, body="one")
    inbound(number, body="two")
    conversation = first.conversation
    assert MessageSession.objects.filter(conversation=conversation).count() == 1
    later = timezone.now() + timedelta(hours=2)
    third = Message.objects.create(
        organization=org_a,
        conversation=conversation,
        direction="inbound",
        source="customer",
        from_number=CUSTOMER,
        to_number=number.phone_number,
        body="three",
    )
    Message.objects.filter(pk=third.pk).update(created_at=later)
    third.refresh_from_db()
    inbox.attach_to_session(conversation, third)
    sessions = list(MessageSession.objects.filter(conversation=conversation).order_by("started_at"))
    assert [s.message_count for s in sessions] == [2, 1]
    assert sessions[0].ends_at == sessions[0].started_at + timedelta(minutes=60)


@pytest.mark.django_db
def test_auto_archive_archives_quiet_conversations_only_when_switched_on(number, org_a, inbound):
    conversation = inbound(number).conversation
    Conversation.objects.filter(pk=conversation.pk).update(
        last_message_at=timezone.now() - timedelta(days=10)
    )
    assert inbox.auto_archive_conversations()["archived"] == 0  # off by default
    InboxSettings.objects.create(organization=org_a, auto_archive_days=7)
    assert inbox.auto_archive_conversations()["archived"] == 1
    conversation.refresh_from_db()
    assert conversation.status == "archived"
    inbound(number, body="back")  # a new message reopens it
    conversation.refresh_from_db()
    assert conversation.status == "open"


@pytest.mark.django_db
def test_create_record_from_conversation_sets_regarding_and_the_number(number, org_a, alice, inbound):
    from crm.models import Case, Lead, RecordTypeConfig

    conversation = inbound(number).conversation
    with pytest.raises(ValidationError):
        inbox.do_create_record_from_conversation(conversation, alice, "lead", {"last_name": "Doe"})
    RecordTypeConfig.objects.create(
        organization=org_a,
        record_type="lead",
        sms_phone_field="mobile_phone",
        allow_create_from_conversation=True,
    )
    lead = inbox.do_create_record_from_conversation(conversation, alice, "lead", {"last_name": "Doe"})
    assert isinstance(lead, Lead) and lead.mobile_phone_e164 == CUSTOMER
    conversation.refresh_from_db()
    assert (conversation.regarding_type, conversation.regarding_id) == ("lead", lead.pk)
    assert list(inbox.conversations_for_record(lead)) == [conversation]
    case = inbox.do_create_record_from_conversation(conversation, alice, "case", {"subject": "Leak"})
    assert isinstance(case, Case)


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_texts_from_one_number_make_one_conversation_and_one_request_each(
    number, alice, aaron
):
    _stored, errors = run_together(lambda i: store_inbound(number, CUSTOMER, f"text {i}"), range(6))
    assert errors == []
    conversation = Conversation.objects.get(customer_number=CUSTOMER)
    assert Message.objects.filter(conversation=conversation).count() == 6
    assert open_notifications(conversation) == {
        alice.pk: Notification.Kind.REQUEST,
        aaron.pk: Notification.Kind.REQUEST,
    }
    assert Notification.objects.get(recipient=aaron).count == 6
    assert unread(conversation, aaron) == 6


@pytest.mark.django_db
@pytest.mark.parametrize("rule", ["own", "team", "records", "all"])
def test_who_may_see_a_conversation_is_decided_in_two_queries_and_agrees_with_the_inbox(
    number, org_a, alice, rule, django_assert_num_queries
):
    from messaging.inbox.visibility import may_see_conversation, members_who_may_see
    from tenancy.models import Membership

    settings = InboxSettings.objects.create(organization=org_a, agent_visibility=rule)
    team = TeamFactory(organization=org_a)
    agents = [MembershipFactory(organization=org_a, role=Role.AGENT) for _ in range(12)]
    for membership in agents[:4]:
        team.members.add(membership)
    owned_lead = LeadFactory(organization=org_a, owner=agents[5].user)
    conversations = [
        Conversation.objects.create(
            organization=org_a, phone_number=number, customer_number="+12025550101", team=team
        ),
        Conversation.objects.create(
            organization=org_a,
            phone_number=number,
            customer_number="+12025550102",
            owner=agents[6].user,
            record_type="lead",
            record_id=owned_lead.pk,
        ),
        Conversation.objects.create(organization=org_a, phone_number=number, customer_number="+12025550103"),
    ]
    members = list(Membership.objects.filter(organization=org_a, is_active=True).order_by("pk"))
    for conversation in conversations:
        with django_assert_num_queries(1 if rule == "all" else 2):
            allowed = {m.user_id for m in members_who_may_see(conversation, settings)}
        expected = {m.user_id for m in members if may_see_conversation(m, conversation.pk)}
        assert allowed == expected
        assert alice.pk in allowed  # admins see everything
        if rule != "all":
            assert allowed != {m.user_id for m in members}  # the rule hid the conversation from someone
