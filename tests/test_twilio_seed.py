"""seed_demo connects "Acme Realty" to the sandbox's demo account, without calling HTTP, and leaves a few
realistic conversations in its inbox."""

import io

import pytest
from django.core.management import call_command

from messaging import access
from messaging.models import MessagingSettings, PhoneNumber, TwilioAccount
from messaging.services.numbers import do_configure_number_webhook
from messaging.twilio.accounts import do_refresh_numbers
from sandbox import demo as sandbox_demo
from tenancy.models import Membership, Organization
from tests import receive_helpers
from tests.plugins.servers import free_port

eager_tasks = receive_helpers.eager_tasks


def seed():
    call_command("seed_demo", stdout=io.StringIO())


@pytest.mark.django_db
def test_seed_demo_connects_acme_to_the_sandbox_demo_account_without_http(settings):
    settings.TWILIO_API_BASE_URL = (
        f"http://127.0.0.1:{free_port()}/sandbox"  # nothing listens: no HTTP allowed
    )
    seed()
    seed()  # idempotent
    acme = Organization.objects.get(slug="acme-realty")
    account = TwilioAccount.objects.get(organization=acme)
    assert account.account_sid == sandbox_demo.DEMO_ACCOUNT_SID
    assert account.get_auth_token() == sandbox_demo.DEMO_AUTH_TOKEN
    assert account.status == TwilioAccount.Status.VALID
    numbers = {n.phone_number: n for n in PhoneNumber.objects.filter(organization=acme)}
    assert set(numbers) == {n["phone_number"] for n in sandbox_demo.DEMO_NUMBERS}
    assert {n.number_type for n in numbers.values()} == {"local", "tollfree", "shortcode"}
    local = numbers[sandbox_demo.DEMO_LOCAL_NUMBER]
    assert local.label
    assert MessagingSettings.objects.get(organization=acme).default_number == local
    agent = Membership.objects.get(organization=acme, user__email="agent1@acme.test")
    assert list(access.numbers_usable_by(agent)) == [local]
    assert not TwilioAccount.objects.filter(organization__slug="globex").exists()


@pytest.mark.django_db
def test_seed_demo_leaves_a_few_realistic_conversations_once(
    settings, django_capture_on_commit_callbacks, eager_tasks
):
    from messaging.models import Conversation, ConversationUserState, Message

    settings.TWILIO_API_BASE_URL = f"http://127.0.0.1:{free_port()}/sandbox"  # no HTTP: nothing is sent
    with django_capture_on_commit_callbacks(execute=True):
        seed()
    with django_capture_on_commit_callbacks(execute=True):
        seed()  # idempotent: no second copy
    acme = Organization.objects.get(slug="acme-realty")
    conversations = Conversation.objects.filter(organization=acme)
    messages = Message.objects.filter(organization=acme)
    assert conversations.count() == 4 and messages.count() == 8
    assert {m.direction for m in messages} == {"inbound", "outbound"}
    assert not TwilioAccount.objects.filter(organization__slug="globex").exists()
    assert not Message.objects.exclude(organization=acme).exists()

    aaron = Membership.objects.get(organization=acme, user__email="agent1@acme.test").user
    maria = conversations.get(customer_number="+14155550134")
    assert maria.owner == aaron and maria.record_type == "lead"
    assert maria.last_message_preview.startswith("Saturday at 10 works")
    state = ConversationUserState.objects.get(conversation=maria, user=aaron)
    assert state.unread_count > 0  # her reply waits for him

    failed = messages.get(status="undelivered")
    assert failed.error_code == 30003 and "unreachable" in failed.error_message
    assert failed.conversation.last_message_status == "undelivered"

    automated = messages.get(source="automation")
    assert automated.source_label == "Open house follow-up"

    stranger = conversations.get(customer_number="+14155550177")
    assert stranger.owner is None and stranger.record_type == ""


@pytest.mark.django_db
def test_seed_demo_keeps_what_the_admin_changed(settings):
    seed()
    acme = Organization.objects.get(slug="acme-realty")
    local = PhoneNumber.objects.get(organization=acme, phone_number=sandbox_demo.DEMO_LOCAL_NUMBER)
    PhoneNumber.objects.filter(pk=local.pk).update(label="Renamed by the admin")
    MessagingSettings.objects.filter(organization=acme).update(default_number=None)
    seed()
    local.refresh_from_db()
    assert local.label == "Renamed by the admin"
    assert PhoneNumber.objects.filter(organization=acme).count() == 3


@pytest.mark.django_db
def test_the_seeded_account_works_against_the_running_sandbox(twilio_sandbox):
    seed()
    acme = Organization.objects.get(slug="acme-realty")
    account = TwilioAccount.objects.get(organization=acme)
    label = PhoneNumber.objects.get(phone_number=sandbox_demo.DEMO_LOCAL_NUMBER).label

    result = do_refresh_numbers(account, None)

    assert result.total_active == 3 and result.added == 0 and result.deactivated == 0
    local = PhoneNumber.objects.get(organization=acme, phone_number=sandbox_demo.DEMO_LOCAL_NUMBER)
    assert local.label == label  # the sandbox's SIDs were adopted, the rows kept
    assert PhoneNumber.objects.filter(organization=acme).count() == 3
    before = twilio_sandbox.client(account.account_sid, account.get_auth_token()).incoming_phone_numbers(
        local.sid
    )
    original = before.fetch()
    try:
        do_configure_number_webhook(local, None)
        assert local.sms_url.endswith("/api/incoming-sms")
        assert before.fetch().sms_url == local.sms_url
    finally:
        # The sandbox process is shared by the whole session: leave its demo number as it was.
        before.update(sms_url=original.sms_url or "", sms_method=original.sms_method or "POST")
