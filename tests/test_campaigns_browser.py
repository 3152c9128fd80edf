"""An admin builds a 3-step campaign from a CSV in Settings → Campaigns, starts it, watches the progress bar
and chart move as the texts go to the sandbox, then one person replies from the sandbox phone and stops
(real server, sandbox; in production mode a Celery worker, the test ticking the dispatcher as beat would)."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from campaigns.drip import dispatcher
from campaigns.drip.models import Campaign, CampaignRecipient
from messaging.models import Message, MessagingSettings
from messaging.twilio.public_urls import INCOMING_SMS_PATH
from tenancy.models import Role
from tests.campaign_helpers import daytime_people
from tests.factories import PASSWORD, MembershipFactory
from tests.factories_messaging import PhoneNumberFactory, TwilioAccountFactory
from tests.factories_send import FAST_RATES, PNG
from tests.page_checks import check_page
from tests.plugins import servers
from tests.plugins.servers import start_asgi_server, start_celery_worker, wait_until

WAIT = 30_000

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.browser
def test_an_admin_runs_a_csv_campaign_and_a_reply_stops_that_person(
    page, tmp_path, org_a, twilio_sandbox, monkeypatch, settings
):
    settings.QUICKSEND_SEND_RATES = FAST_RATES
    MembershipFactory(organization=org_a, role=Role.ADMIN, user__username="ada")
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
    people = daytime_people(3, start=7100)
    csv_file = tmp_path / "people.csv"
    csv_file.write_text("Phone,First Name\n" + "".join(f"{p},Guest{i}\n" for i, p in enumerate(people)))

    server = start_asgi_server(tmp_path, extra_env=env)
    worker = None if settings.CELERY_TASK_ALWAYS_EAGER else start_celery_worker(tmp_path / "celery.log", env)

    def tick():
        # Beat's job in production mode (the embedded server ticks its own scheduler).
        if worker is not None:
            dispatcher.dispatch()

    try:
        page.set_default_timeout(WAIT)
        base = server.base_url
        page.goto(base + "/login/")
        page.fill("input[name=username]", "ada")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.goto(base + "/settings/campaigns/")
        page.get_by_role("link", name="Create your first campaign").click()
        page.get_by_label("Name", exact=True).fill("Open house invite")
        page.get_by_label("Brand name (the first message should say it)").fill("Acme Homes")
        page.get_by_label("Step 1").fill("Acme Homes: hi {{First Name}}, open house Saturday!")
        page.get_by_label("Step 2").fill("Acme Homes: see you Saturday, {{First Name}}?")
        page.get_by_label("Step 3").fill("Acme Homes: last call for Saturday.")
        flyer = tmp_path / "flyer.png"
        flyer.write_bytes(PNG)
        page.locator("#id_step1_media").set_input_files(str(flyer))  # the first text carries the flyer
        page.get_by_label("Read the window on").select_option("recipient")
        page.get_by_label("From", exact=True).fill("00:00")
        page.get_by_label("Until", exact=True).fill("23:59")
        page.get_by_label("CSV file with a header row").set_input_files(str(csv_file))
        # The file's header row becomes the phone column's choices, the phone guessed, the rest merge fields.
        column = page.locator("select#id_phone_column")
        expect(column).to_have_value("Phone")
        assert column.locator("option").all_text_contents() == ["Phone", "First Name"]
        expect(page.locator("#csv-merge-fields")).to_have_text("Merge fields from this file: {{First Name}}")
        cells = page.evaluate(
            "(line) => import('/static/campaigns/csv_columns.js').then((m) => m.headerCells(line))",
            '"Last, First",Phone,"Say ""hi""",, Notes ',
        )
        assert cells == ["Last, First", "Phone", 'Say "hi"', "Notes"]
        page.get_by_label("Everyone in this file agreed to receive texts from us").check()
        page.screenshot(path=str(tmp_path / "campaign-new-1366.png"), full_page=True)
        page.get_by_role("button", name="Create campaign").click()
        expect(page.get_by_test_id("sendable")).to_have_text("3")
        expect(page.get_by_text("With flyer.png")).to_be_visible()
        campaign = Campaign.objects.get(organization=org_a)
        assert [s.wait_minutes for s in campaign.steps.all()] == [0, 1440, 1440]

        page.get_by_role("button", name="Start now").click()
        expect(page.get_by_test_id("campaign-status")).to_have_text("Running")
        wait_until(
            lambda: (tick(), Message.objects.filter(organization=org_a).exclude(sid=None).count() == 3)[1],
            timeout=60,
            message="the first step did not reach the sandbox",
        )
        # The page refreshes itself (htmx): a third of the steps are done, the chart has a bar.
        expect(page.get_by_test_id("percent")).to_have_text("33 %")
        expect(page.get_by_test_id("sent")).to_have_text("3")
        expect(page.locator("[data-testid=chart] rect.bar-sent")).to_have_count(1)
        texts = twilio_sandbox.received(people[0])
        assert texts and texts[0]["body"].startswith("Acme Homes: hi Guest0, open house Saturday!")
        assert texts[0]["body"].endswith("Reply STOP to opt out.")
        assert int(texts[0]["num_media"]) == 1

        twilio_sandbox.inbound(people[0], number.phone_number, "Yes, we'll come!")
        wait_until(
            lambda: CampaignRecipient.objects.get(campaign=campaign, phone=people[0]).status == "replied",
            timeout=60,
            message="the reply did not stop the person",
        )
        expect(page.get_by_test_id("replied")).to_have_text("1")
        expect(page.get_by_test_id("percent")).to_have_text("56 %")
        page.get_by_test_id("replied").click()
        expect(page.get_by_role("heading", name="People: replied")).to_be_visible()
        expect(page.locator("table").last).to_contain_text(people[0])
        check_page(page, "campaign-page")
    finally:
        server.stop()
        if worker is not None:
            worker.stop()
