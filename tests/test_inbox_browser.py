"""The inbox, the bell and the carry-over question in a real browser against the real server: uvicorn, in
production mode a Celery worker, and the standalone Twilio sandbox playing the customer. Every page is also
checked at 1366 and 375 px (no overflow, no serious axe violation) and screenshotted (page_checks.py)."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from playwright.sync_api import expect

from crm.models import Lead
from messaging.models import Conversation, InboxSettings, Message
from messaging.twilio.public_urls import INCOMING_SMS_PATH
from tenancy.models import Role
from tests.factories import PASSWORD, MembershipFactory
from tests.factories_messaging import (
    ConversationFactory,
    MessageFactory,
    MessagingSettingsFactory,
    PhoneNumberFactory,
    TwilioAccountFactory,
)
from tests.page_checks import artifacts_dir, check_page
from tests.plugins import servers
from tests.plugins.browser import CHROMIUM_ARGS, playwright
from tests.plugins.servers import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CUSTOMER = "+12065550142"


@pytest.fixture
def amy(org_a):
    return MembershipFactory(
        organization=org_a,
        role=Role.AGENT,
        user__username="amy",
        user__first_name="Amy",
        user__last_name="Agent",
        user__email="amy@acme.test",
    ).user


@pytest.fixture
def app_server(request, tmp_path, monkeypatch, twilio_sandbox, transactional_db):
    """The app under uvicorn whose public address is its own, talking to the test's sandbox; in production
    mode with a Celery worker process."""
    port = servers.free_port()
    monkeypatch.setattr(servers, "free_port", lambda: port)
    env = {"TWILIO_API_BASE_URL": twilio_sandbox.base_url, "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    server = servers.start_asgi_server(tmp_path, extra_env=env)
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        request.getfixturevalue("celery_worker_process")
    yield server
    server.stop()


@pytest.fixture
def line(twilio_sandbox, app_server, org_a):
    """A sandbox number of org A whose texts come to the app; every agent may send from it."""
    sid, token = twilio_sandbox.new_account()
    bought = twilio_sandbox.add_number(sid, sms_url=app_server.base_url + INCOMING_SMS_PATH)
    account = TwilioAccountFactory(organization=org_a, account_sid=sid, auth_token=token)
    MessagingSettingsFactory(organization=org_a, agents_may_use_any_number=True)
    return PhoneNumberFactory(account=account, phone_number=bought["phone_number"], label="Sales line")


@pytest.fixture
def chromium(chromium_executable):
    with playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def log_in(browser, base_url: str, username: str, path: str = "/"):
    """A fresh browser context (its own session) logged in as ``username``, on ``path``."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(base_url + "/login/")
    page.get_by_label("Email").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login/" not in url)
    page.goto(base_url + path)
    page.locator("body[data-live=connected]").wait_for()  # the live feed is open
    return page


def row(page, text: str):
    return page.get_by_test_id("conversation-row").filter(has_text=text)


def test_a_customer_texts_and_the_inbox_shows_it_live_a_second_agent_bell_counts_it_and_it_is_accepted(
    chromium, twilio_sandbox, app_server, line, org_a, aaron, amy
):
    aaron_page = log_in(chromium, app_server.base_url, "aaron", "/inbox/")
    expect(aaron_page.get_by_text("No conversations here")).to_be_visible()
    aaron_page.evaluate("window.stayedOnThePage = true")
    amy_page = log_in(chromium, app_server.base_url, "amy", "/")
    expect(amy_page.get_by_test_id("bell-count")).to_be_hidden()

    twilio_sandbox.inbound(from_=CUSTOMER, to=line.phone_number, body="Is the flat on Elm St still free?")

    # Aaron's inbox lists it without a reload: number, preview, unread badge, unassigned.
    first = row(aaron_page, "Is the flat on Elm St still free?")
    expect(first).to_be_visible()
    expect(first).to_contain_text("+1 206 555 0142")
    expect(first).to_contain_text("Unassigned")
    expect(first.locator(".unread-badge")).to_have_text("1")
    # Amy, on her home page, sees the bell count it, and the tab title too.
    expect(amy_page.get_by_test_id("bell-count")).to_have_text("1")
    expect(amy_page).to_have_title(re.compile(r"^\(1\) "))
    expect(amy_page.get_by_test_id("unread-count")).to_have_text("1")  # her home's count follows the bell
    amy_page.get_by_role("button", name=re.compile("Notifications")).click()
    expect(amy_page.get_by_test_id("notification")).to_contain_text("New texter +1 206 555 0142")
    expect(amy_page.get_by_test_id("notification").get_by_role("button", name="Accept")).to_be_visible()
    amy_page.screenshot(path=str(artifacts_dir() / "bell-panel-1366.png"))

    # Aaron opens it and accepts the first text: he owns it.
    first.locator(".conv-row").click()
    expect(aaron_page).to_have_url(re.compile(r"/inbox/conversations/\d+"))
    expect(aaron_page.get_by_test_id("conversation-name")).to_have_text("+1 206 555 0142")
    banner = aaron_page.locator("[data-request-banner]")
    expect(banner).to_contain_text("First text from this number")
    banner.get_by_role("button", name="Accept").click()
    expect(aaron_page.get_by_test_id("conversation-owner")).to_have_text("Owner: you")
    expect(banner).to_be_hidden()
    conversation = Conversation.objects.get(customer_number=CUSTOMER)
    assert conversation.owner == aaron

    # The customer replies: it shows in Aaron's list, still without a reload.
    twilio_sandbox.inbound(from_=CUSTOMER, to=line.phone_number, body="Saturday at 10 works for me")
    expect(row(aaron_page, "Saturday at 10 works for me")).to_be_visible()
    expect(row(aaron_page, "Saturday at 10 works for me")).to_contain_text(aaron.get_full_name())
    assert aaron_page.evaluate("window.stayedOnThePage") is True
    assert Message.objects.filter(conversation=conversation).count() == 2
    check_page(
        aaron_page, "inbox-conversation", ready=lambda p: p.get_by_test_id("conversation-name").wait_for()
    )

    # A new text to someone who never texted (c opens it): it reaches their phone and its conversation opens.
    aaron_page.locator("body").press("c")
    compose = aaron_page.get_by_role("dialog", name="New text")
    compose.get_by_label("To").fill("(206) 555-0199")
    expect(compose.get_by_label("From")).to_have_value(str(line.pk))
    compose.get_by_label("Message").fill("Hello from the Elm St team")
    aaron_page.screenshot(
        path=str(artifacts_dir() / f"inbox-new-text-{aaron_page.viewport_size['width']}.png")
    )
    compose.get_by_role("button", name="Send").click()
    expect(aaron_page.get_by_test_id("conversation-name")).to_have_text("+1 206 555 0199")
    # (The sandbox is shared by the tests of a run: other tests may have texted this phone before.)
    wait_until(
        lambda: "Hello from the Elm St team" in [m["body"] for m in twilio_sandbox.received("+12065550199")],
        message="the text never reached the phone",
    )

    aaron_page.goto(app_server.base_url + "/inbox/")
    check_page(aaron_page, "inbox", ready=lambda p: row(p, "Saturday").wait_for())
    check_page(amy_page, "home-agent", ready=lambda p: p.get_by_test_id("workspace-summary").wait_for())


def test_an_admin_reassigns_a_lead_and_its_conversation_moves_with_it(
    chromium, asgi_server, org_a, alice, aaron, amy
):
    account = TwilioAccountFactory(organization=org_a)
    number = PhoneNumberFactory(account=account, label="Sales line")
    lead = Lead.objects.create(
        organization=org_a, first_name="Jane", last_name="Doe", mobile_phone=CUSTOMER, owner=aaron
    )
    conversation = ConversationFactory(
        phone_number=number, customer_number=CUSTOMER, owner=aaron, record_type="lead", record_id=lead.pk
    )
    MessageFactory(conversation=conversation, body="Hi, it's Jane")

    page = log_in(chromium, asgi_server.base_url, "alice", f"/crm/leads/{lead.pk}/")
    page.get_by_label("New owner").select_option(label="Amy Agent")
    page.get_by_role("button", name="Reassign").click()

    expect(page.get_by_role("heading", name="Jane Doe has a new owner")).to_be_visible()
    listed = page.get_by_test_id("carry-over-conversations")
    expect(listed).to_contain_text(f"owned by {aaron.get_full_name()}")
    check_page(page, "carry-over")
    page.get_by_label(re.compile("Carry over to the new owner")).check()
    page.get_by_role("button", name="Continue").click()

    expect(page).to_have_url(re.compile(rf"/crm/leads/{lead.pk}/$"))
    expect(page.get_by_role("status").filter(has_text="moved to Amy Agent")).to_be_visible()
    wait_until(lambda: Conversation.objects.get(pk=conversation.pk).owner_id == amy.pk)
    lead.refresh_from_db()
    assert lead.owner == amy


def test_every_workspace_page_fits_375_px_and_passes_axe(chromium, asgi_server, org_a, alice, aaron):
    account = TwilioAccountFactory(organization=org_a)
    number = PhoneNumberFactory(account=account, label="Sales line")
    lead = Lead.objects.create(
        organization=org_a, first_name="Jane", last_name="Doe", mobile_phone=CUSTOMER, owner=aaron
    )
    conversation = ConversationFactory(phone_number=number, customer_number=CUSTOMER, owner=aaron)
    MessageFactory(
        conversation=conversation, body="A text that is long enough to be cut short in a narrow list " * 2
    )
    base = asgi_server.base_url

    page = log_in(chromium, base, "alice")
    checks = {
        "home-admin": "/",
        "my-messages": "/messages/",
        "settings-inbox": "/settings/inbox/",
        "profile": "/profile/",
        "leads": "/crm/leads/",
        "lead": f"/crm/leads/{lead.pk}/",
        "settings-twilio": "/settings/twilio/",
        "settings-number": f"/settings/twilio/numbers/{number.pk}",
        "settings-members": "/settings/members/",
        "not-found": "/no/such/page/",
    }
    for name, path in checks.items():
        page.goto(base + path)
        check_page(page, name)
    page.goto(base + "/messages/")
    check_page(page, "my-messages", ready=lambda p: p.locator("[data-rows] tr").first.wait_for())

    # Settings → Inbox saves what the admin chose.
    page.goto(base + "/settings/inbox/")
    page.get_by_label("Conversations they or their teams own").check()
    page.get_by_label("Idle timeout (minutes)").fill("15")
    page.get_by_role("button", name="Save inbox settings").click()
    expect(page.get_by_role("status")).to_have_text("Inbox settings saved.")
    saved = InboxSettings.objects.get(organization=org_a)
    assert (saved.agent_visibility, saved.idle_timeout_minutes) == ("team", 15)

    anonymous = chromium.new_context().new_page()
    anonymous.goto(base + "/login/")
    check_page(anonymous, "login")


def test_an_agent_scrolls_searches_and_works_the_inbox_with_the_keyboard_and_bulk_actions(
    chromium, asgi_server, org_a, alice
):
    from datetime import timedelta

    from django.utils import timezone

    number = PhoneNumberFactory(account=TwilioAccountFactory(organization=org_a), label="Sales line")
    now = timezone.now()
    conversations = [
        ConversationFactory(
            phone_number=number,
            customer_number=f"+1206555{1000 + i}",
            owner=alice,
            last_message_at=now - timedelta(minutes=i),
            last_message_preview=f"Question number {i}",
            last_message_direction="inbound",
            last_message_status="received",
        )
        for i in range(45)
    ]
    page = log_in(chromium, asgi_server.base_url, "alice", "/inbox/")
    rows = page.get_by_test_id("conversation-row")
    expect(rows).to_have_count(30)  # the first page of the keyset cursor
    rows.nth(29).scroll_into_view_if_needed()
    expect(rows).to_have_count(45)  # the next page, fetched when the end of the list came near

    # Keyboard: j opens the first, j the next, e archives it and moves on, ? lists the shortcuts.
    page.locator("body").press("j")
    expect(page).to_have_url(re.compile(rf"/inbox/conversations/{conversations[0].pk}"))
    page.locator("body").press("j")
    expect(page).to_have_url(re.compile(rf"/inbox/conversations/{conversations[1].pk}"))
    page.locator("body").press("e")
    expect(page.get_by_role("status").filter(has_text="Archived.")).to_be_visible()
    wait_until(lambda: Conversation.objects.get(pk=conversations[1].pk).status == "archived")
    expect(page).to_have_url(re.compile(rf"/inbox/conversations/{conversations[2].pk}"))
    expect(rows).to_have_count(44)
    page.locator("body").press("k")
    expect(page).to_have_url(re.compile(rf"/inbox/conversations/{conversations[0].pk}"))
    # The composer is enabled once the conversation's context has loaded: only then can "r" focus it.
    expect(page.locator("[data-thread-mount] textarea")).to_be_enabled()
    page.locator("body").press("r")
    expect(page.locator("[data-thread-mount] textarea")).to_be_focused()  # reply: the shared composer
    page.keyboard.press("Escape")
    page.locator("body").press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    page.keyboard.press("Escape")

    # Search uses the API's q: a number in another format finds its conversation.
    page.get_by_label("Search conversations").fill("(206) 555-1007")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Question number 7")
    page.get_by_label("Search conversations").fill("")
    expect(rows).to_have_count(30)  # back to the first page

    # Bulk: tick two and archive them; the Archived filter shows the three archived ones.
    page.get_by_label("Select +1 206 555 1003").check()
    page.get_by_label("Select +1 206 555 1004").check()
    expect(page.get_by_text("2 selected")).to_be_visible()
    page.get_by_role("button", name="Archive", exact=True).first.click()
    wait_until(lambda: Conversation.objects.filter(status="archived").count() == 3)
    page.get_by_label("Show").select_option("archived")
    expect(rows).to_have_count(3)
    expect(page).to_have_url(re.compile(r"filter=archived"))
