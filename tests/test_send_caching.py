"""What the send path keeps between messages (quicksend/org_cache.py, messaging/twilio/client.py) never
hides a change and never crosses organizations."""

from __future__ import annotations

import pytest

from crm.models import RecordType, RecordTypeConfig
from crm.services import do_save_record_type_config
from messaging.models import TwilioAccount
from messaging.services.sending import do_send_message
from messaging.twilio import client as twilio_client
from quicksend import org_cache
from tenancy.models import Membership
from tests import factories_send
from tests.factories_messaging import MessagingSettingsFactory, PhoneNumberFactory, TwilioAccountFactory

line = factories_send.line
fast_rates = factories_send.fast_rates
inline_tasks = factories_send.inline_tasks


def _number_of(org):
    number = PhoneNumberFactory(account=TwilioAccountFactory(organization=org))
    MessagingSettingsFactory(organization=org, default_number=number)
    return number


def _send(org, user, to):
    membership = Membership.objects.get(organization=org, user=user)
    return do_send_message(org, actor=user, membership=membership, source="agent", to=to, body="Hi")


def test_a_saved_record_type_change_applies_to_the_very_next_send(
    org_a, alice, django_capture_on_commit_callbacks
):
    _number_of(org_a)
    with django_capture_on_commit_callbacks():
        assert _send(org_a, alice, "(206) 555-0123").to_number == "+12065550123"  # cached: country 1
        do_save_record_type_config(org_a, alice, RecordType.CONTACT, default_country="44")
        assert _send(org_a, alice, "07911 123456").to_number == "+447911123456"


def test_one_organizations_cached_configs_never_serve_another(
    org_a, org_b, alice, bob, django_capture_on_commit_callbacks
):
    _number_of(org_a)
    _number_of(org_b)
    do_save_record_type_config(org_a, alice, RecordType.CONTACT, default_country="44")
    with django_capture_on_commit_callbacks():
        assert _send(org_a, alice, "07911 123456").to_number == "+447911123456"
        assert _send(org_b, bob, "(206) 555-0123").to_number == "+12065550123"
        assert _send(org_a, alice, "07911 123457").to_number == "+447911123457"
    assert RecordTypeConfig.cached_for_type(org_a.pk, RecordType.CONTACT).default_country == "44"
    assert RecordTypeConfig.cached_for_type(org_b.pk, RecordType.CONTACT).default_country == "1"


def test_a_change_made_by_another_process_applies_once_the_entry_is_seconds_old(
    org_a, alice, monkeypatch, settings
):
    # Another web or worker process saved it: no signal reaches this process, only the entry's age does.
    settings.QUICKSEND_ORG_CACHE_SECONDS = 2
    clock = [1000.0]
    monkeypatch.setattr(org_cache.time, "monotonic", lambda: clock[0])
    config = do_save_record_type_config(org_a, alice, RecordType.CONTACT, default_country="1")
    assert RecordTypeConfig.cached_for_type(org_a.pk, RecordType.CONTACT).default_country == "1"
    RecordTypeConfig.objects.filter(pk=config.pk).update(default_country="44")  # as if elsewhere
    clock[0] += 1.0
    assert RecordTypeConfig.cached_for_type(org_a.pk, RecordType.CONTACT).default_country == "1"
    clock[0] += 1.5
    assert RecordTypeConfig.cached_for_type(org_a.pk, RecordType.CONTACT).default_country == "44"


def test_the_worker_keeps_its_twilio_client_until_the_token_changes(db, monkeypatch):
    account = TwilioAccountFactory(auth_token="a" * 32)
    decrypted = []
    real = TwilioAccount.get_auth_token
    monkeypatch.setattr(TwilioAccount, "get_auth_token", lambda self: decrypted.append(1) or real(self))

    first = twilio_client.client_for_account(TwilioAccount.objects.get(pk=account.pk))
    again = twilio_client.client_for_account(TwilioAccount.objects.get(pk=account.pk))
    assert again is first and len(decrypted) == 1
    assert (first.username, first.password) == (account.account_sid, "a" * 32)

    account.set_auth_token("b" * 32)
    account.save()
    changed = twilio_client.client_for_account(TwilioAccount.objects.get(pk=account.pk))
    assert changed is not first and changed.password == "b" * 32


def test_two_organizations_accounts_never_share_a_client(org_a, org_b):
    a = TwilioAccountFactory(organization=org_a, auth_token="a" * 32)
    b = TwilioAccountFactory(organization=org_b, auth_token="b" * 32)
    client_a, client_b = twilio_client.client_for_account(a), twilio_client.client_for_account(b)
    assert client_a is not client_b
    assert (client_a.username, client_a.password) == (a.account_sid, "a" * 32)
    assert (client_b.username, client_b.password) == (b.account_sid, "b" * 32)


@pytest.mark.usefixtures("inline_tasks")
def test_a_send_after_the_token_changed_uses_the_new_token(
    org_a, alice, line, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = _send(org_a, alice, "+12065550188")
    first.refresh_from_db()
    assert first.sid and first.status != "failed"
    line.account.set_auth_token("0" * 32)  # a token Twilio does not accept: the worker must use it
    line.account.save()
    with django_capture_on_commit_callbacks(execute=True):
        second = _send(org_a, alice, "+12065550188")
    second.refresh_from_db()
    assert (second.status, second.error_code) == ("failed", 20003)
