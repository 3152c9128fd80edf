"""Keyword opt-in end to end on the sandbox phone: someone texts JOIN to the number, gets the CTIA-complete
confirmation, is recorded as opted in (the ledger), becomes a lead and gets the linked campaign's first step
(real server and sandbox; in production mode a Celery worker, the test ticking the dispatcher)."""

from __future__ import annotations

import json

import pytest

from campaigns.drip import dispatcher
from campaigns.drip.models import CampaignRecipient, KeywordOptIn
from campaigns.drip.services import do_start_campaign
from crm.models import Lead
from messaging.models import ConsentEvent, MessagingSettings
from messaging.twilio.public_urls import INCOMING_SMS_PATH
from tests.campaign_helpers import campaign, daytime_people, enroll
from tests.factories_messaging import PhoneNumberFactory, TwilioAccountFactory
from tests.factories_send import FAST_RATES
from tests.plugins import servers
from tests.plugins.servers import start_asgi_server, start_celery_worker, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_texting_join_opts_in_confirms_creates_the_lead_and_enrolls(
    tmp_path, org_a, alice, twilio_sandbox, monkeypatch, settings
):
    settings.QUICKSEND_SEND_RATES = FAST_RATES
    port = servers.free_port()
    monkeypatch.setattr(servers, "free_port", lambda: port)
    env = {
        "TWILIO_API_BASE_URL": twilio_sandbox.base_url,
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "QUICKSEND_SEND_RATES": json.dumps(FAST_RATES),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    sid, token = twilio_sandbox.new_account()
    twilio_sandbox.behaviour(sid, rates={"local": 1000}, delay_ms=[0, 1])
    remote = twilio_sandbox.add_number(sid, sms_url=f"http://127.0.0.1:{port}{INCOMING_SMS_PATH}")
    account = TwilioAccountFactory(organization=org_a, account_sid=sid, auth_token=token)
    number = PhoneNumberFactory(account=account, sid=remote["sid"], phone_number=remote["phone_number"])
    MessagingSettings.objects.update_or_create(organization=org_a, defaults={"default_number": number})
    drip = campaign(
        org_a, alice, [number], window_clock="recipient", steps=[{"body": "Acme: welcome aboard!"}]
    )
    (someone_else,) = daytime_people(1, start=8800)
    enroll(drip, [someone_else])
    do_start_campaign(drip, alice)
    KeywordOptIn.objects.create(
        organization=org_a,
        number=number,
        keyword="JOIN",
        campaign=drip,
        brand="Acme",
        frequency="Up to 4 msgs/month",
    )
    (phone,) = daytime_people(1, start=8900)

    server = start_asgi_server(tmp_path, extra_env=env)
    worker = None if settings.CELERY_TASK_ALWAYS_EAGER else start_celery_worker(tmp_path / "celery.log", env)

    def tick():
        if worker is not None:
            dispatcher.dispatch()

    try:
        twilio_sandbox.inbound(phone, number.phone_number, "join")
        wait_until(
            lambda: (tick(), len(twilio_sandbox.received(phone)) >= 2)[1],
            timeout=120,
            message="the confirmation and the first step did not arrive",
        )
    finally:
        server.stop()
        if worker is not None:
            worker.stop()
    bodies = [m["body"] for m in twilio_sandbox.received(phone)]
    assert bodies[0] == (
        "Acme: you're subscribed. Up to 4 msgs/month. Msg & data rates may apply. Reply HELP for help, "
        "STOP to cancel."
    )
    assert bodies[1] == "Acme: welcome aboard! Reply STOP to opt out."
    assert len(bodies) == 2
    event = ConsentEvent.objects.get(organization=org_a, phone_number=phone)
    assert (event.action, event.method, event.keyword) == ("opt_in", "keyword", "JOIN")
    lead = Lead.objects.get(organization=org_a, mobile_phone_e164=phone)
    person = CampaignRecipient.objects.get(campaign=drip, phone=phone)
    assert (person.record_type, person.record_id, person.status) == ("lead", lead.pk, "completed")
