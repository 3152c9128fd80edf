"""Domain signals go somewhere: every signal one of our apps defines has a receiver once the apps are loaded,
and the signals that tell another part of the product do what they promise."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
from django.dispatch import Signal

from crm import services as crm_services
from crm.models import RecordType
from messaging.inbox.events import notification_payload
from messaging.models import Notification
from messaging.twilio.accounts import do_mark_twilio_account_invalid
from messaging.twilio.errors import CODES, TwilioError
from tests.factories_messaging import PhoneNumberFactory, TwilioAccountFactory


@pytest.fixture
def account(org_a):
    return TwilioAccountFactory(organization=org_a)


@pytest.fixture
def number(account):
    return PhoneNumberFactory(account=account)


ROOT = Path(__file__).resolve().parent.parent
APPS = ("quicksend", "tenancy", "crm", "templates_app", "campaigns", "messaging", "frontend")


def _defined_signals() -> dict[str, Signal]:
    """``module.NAME`` → the Signal, for every ``NAME = Signal(...)`` at the top of one of our modules."""
    found = {}
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text())
            for node in tree.body:
                if (
                    isinstance(node, ast.Assign)
                    and isinstance(node.value, ast.Call)
                    and getattr(node.value.func, "id", getattr(node.value.func, "attr", "")) == "Signal"
                ):
                    module_name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
                    module = importlib.import_module(module_name)
                    for target in node.targets:
                        found[f"{module_name}.{target.id}"] = getattr(module, target.id)
    return found


def test_every_signal_defined_by_the_apps_has_a_receiver_after_loading():
    signals = _defined_signals()
    assert "messaging.signals.twilio_account_invalidated" in signals, "the search finds the signals"
    silent = sorted(name for name, signal in signals.items() if not signal.receivers)
    assert silent == [], f"signals nobody receives: {silent}"


@pytest.mark.django_db(transaction=True)
def test_admins_are_notified_in_the_app_when_twilio_refuses_an_account(
    org_a, org_b, alice, aaron, bob, account
):
    error = TwilioError(CODES[20003].message, code=20003, kind="auth")

    do_mark_twilio_account_invalid(account, error)
    do_mark_twilio_account_invalid(account, error)

    notes = list(Notification.objects.filter(kind=Notification.Kind.ACCOUNT))
    assert [n.recipient_id for n in notes] == [alice.pk], "one notification per admin of the organization"
    assert notes[0].count == 1, "an account already invalid is not announced again"
    assert notes[0].account_id == account.pk
    assert not Notification.objects.filter(recipient=aaron).exists(), "agents are not told"
    assert not Notification.objects.filter(organization=org_b).exists()
    payload = notification_payload(notes[0])
    assert payload["preview"] == CODES[20003].message
    assert payload["link"] == "/settings/twilio/" and payload["conversation_id"] is None


@pytest.mark.django_db(transaction=True)
def test_deleting_a_record_unlinks_its_conversations_and_keeps_them(org_a, alice, number):
    from messaging.inbox.conversations import get_or_create_conversation

    lead = crm_services.do_create_record(org_a, alice, RecordType.LEAD, {"last_name": "Gone"})
    conversation, _ = get_or_create_conversation(
        number, "+14155550177", record_type=RecordType.LEAD, record_id=lead.pk
    )

    crm_services.do_delete_record(lead, alice)

    conversation.refresh_from_db()
    assert (conversation.record_type, conversation.record_id) == ("", None)
