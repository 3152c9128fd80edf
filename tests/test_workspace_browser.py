"""The rest of the agent workspace in a real browser against the real server (uvicorn; in production mode a
Celery worker, Redis, PostgreSQL) and the standalone Twilio sandbox playing the customer: Dismiss, Block,
creating a record from a conversation, desktop notifications, typing and viewing, a live text painted from its
frame without a fetch, times in the organization's time zone, and a record list's bulk reassign asking about
the conversations. Pages are checked at 1366 and 375 px (no overflow, no serious axe violation) and
screenshotted (page_checks.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from crm import services as crm_services
from crm.models import Lead, RecordType
from messaging.models import (
    ConsentState,
    Conversation,
    ConversationUserState,
    MemberMessagingSettings,
    Message,
)
from tests import test_inbox_browser as inbox_browser
from tests.factories import PASSWORD
from tests.factories_messaging import (
    ConversationFactory,
    MessageFactory,
    MessagingSettingsFactory,
    PhoneNumberFactory,
    TwilioAccountFactory,
)
from tests.page_checks import artifacts_dir, check_page
from tests.plugins.servers import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The inbox browser tests' fixtures: the app with a worker and the sandbox, a number, Chromium, Amy.
amy = inbox_browser.amy
app_server = inbox_browser.app_server
line = inbox_browser.line
chromium = inbox_browser.chromium
log_in = inbox_browser.log_in
row = inbox_browser.row

CUSTOMER = "+12065550143"


def open_first_text(page, text: str):
    """Open the conversation whose row shows ``text`` and wait for its request banner."""
    first = row(page, text)
    expect(first).to_be_visible()
    first.locator(".conv-row").click()
    banner = page.locator("[data-request-banner]")
    expect(banner).to_contain_text("First text from this number")
    return banner


def test_dismiss_hides_a_first_text_from_this_agent_only(
    chromium, twilio_sandbox, app_server, line, aaron, amy
):
    page = log_in(chromium, app_server.base_url, "aaron", "/inbox/")
    twilio_sandbox.inbound(from_=CUSTOMER, to=line.phone_number, body="Do you rent parking spots?")
    banner = open_first_text(page, "Do you rent parking spots?")
    banner.get_by_role("button", name="Dismiss").click()

    expect(page.get_by_role("status").filter(has_text="Dismissed until they text again.")).to_be_visible()
    expect(row(page, "Do you rent parking spots?")).to_have_count(0)
    conversation = Conversation.objects.get(customer_number=CUSTOMER)
    wait_until(
        lambda: ConversationUserState.objects.filter(
            conversation=conversation, user=aaron, dismissed=True
        ).exists()
    )
    # Nobody else's inbox changes: Amy still has the first text to accept, and nobody owns it.
    amy_page = log_in(chromium, app_server.base_url, "amy", "/inbox/")
    expect(row(amy_page, "Do you rent parking spots?")).to_be_visible()
    conversation.refresh_from_db()
    assert conversation.owner is None and conversation.status == "open"

    # A new text brings it back for Aaron, live.
    twilio_sandbox.inbound(from_=CUSTOMER, to=line.phone_number, body="Or a storage unit?")
    expect(row(page, "Or a storage unit?")).to_be_visible()


def test_a_list_answer_that_left_before_the_dismiss_does_not_bring_the_row_back(
    chromium, twilio_sandbox, app_server, line, aaron
):
    """A second customer's text refreshes the list; that answer, computed before the dismiss and handed
    to the page only after it (held here), must not put the dismissed row back."""
    page = log_in(chromium, app_server.base_url, "aaron", "/inbox/")
    twilio_sandbox.inbound(from_=CUSTOMER, to=line.phone_number, body="Do you rent parking spots?")
    banner = open_first_text(page, "Do you rent parking spots?")
    held = []

    def hold_first_list(route):
        if held:
            route.continue_()
        else:
            held.append((route, route.fetch()))  # the server answers now; the page gets it later

    page.route(re.compile(r"/api/v1/conversations\?"), hold_first_list)
    twilio_sandbox.inbound(from_="+12065550144", to=line.phone_number, body="Is the gym open late?")
    for _ in range(200):  # Playwright runs the route handler only while the page is waited on
        if held:
            break
        page.wait_for_timeout(100)
    assert held, "the second text did not refresh the list"
    banner.get_by_role("button", name="Dismiss").click()
    expect(page.get_by_role("status").filter(has_text="Dismissed until they text again.")).to_be_visible()
    expect(row(page, "Do you rent parking spots?")).to_have_count(0)
    route, answer = held[0]
    route.fulfill(response=answer)
    expect(row(page, "Is the gym open late?")).to_be_visible()  # the held answer was handled
    expect(row(page, "Do you rent parking spots?")).to_have_count(0)

    # A new text from the dismissed customer still brings the row back, live.
    twilio_sandbox.inbound(from_=CUSTOMER, to=line.phone_number, body="Or a storage unit?")
    expect(row(page, "Or a storage unit?")).to_be_visible()


def test_block_asks_first_then_blocks_the_number_for_the_whole_organization(
    chromium, twilio_sandbox, app_server, line, org_a, aaron
):
    page = log_in(chromium, app_server.base_url, "aaron", "/inbox/")
    twilio_sandbox.inbound(from_=CUSTOMER, to=line.phone_number, body="WIN A FREE CRUISE click here")
    banner = open_first_text(page, "WIN A FREE CRUISE")

    # Block asks in a real dialog; Cancel changes nothing.
    banner.get_by_role("button", name="Block").click()
    question = page.get_by_role("dialog")
    expect(question).to_contain_text("Block +1 206 555 0143 for the whole organization?")
    page.screenshot(path=str(artifacts_dir() / "inbox-block-question-1366.png"))
    question.get_by_role("button", name="Cancel").click()
    assert not ConsentState.objects.filter(organization=org_a, phone_number=CUSTOMER, blocked=True).exists()

    banner.get_by_role("button", name="Block").click()
    page.get_by_role("dialog").get_by_role("button", name="Block").click()
    expect(page.get_by_role("status").filter(has_text="Number blocked for everyone.")).to_be_visible()
    wait_until(
        lambda: ConsentState.objects.filter(organization=org_a, phone_number=CUSTOMER, blocked=True).exists(),
        message="the number was not blocked",
    )
    conversation = Conversation.objects.get(customer_number=CUSTOMER)
    assert conversation.status == Conversation.Status.ARCHIVED
    # The conversation left the open list; its pane says it is archived.
    expect(row(page, "WIN A FREE CRUISE")).to_have_count(0)
    expect(page.locator("[data-conv-facts]")).to_contain_text("Archived")


def test_a_record_is_created_from_a_conversation_with_its_number(
    chromium, twilio_sandbox, app_server, line, org_a, alice, aaron
):
    crm_services.do_save_record_type_config(
        org_a, alice, RecordType.LEAD, allow_create_from_conversation=True
    )
    page = log_in(chromium, app_server.base_url, "aaron", "/inbox/")
    twilio_sandbox.inbound(from_=CUSTOMER, to=line.phone_number, body="Hi, this is Rosa. Any 3-bedrooms?")
    banner = open_first_text(page, "Any 3-bedrooms?")
    banner.get_by_role("button", name="Accept").click()
    expect(page.get_by_test_id("conversation-owner")).to_have_text("Owner: you")

    page.get_by_role("button", name="Create record").click()
    dialog = page.get_by_role("dialog", name="Create a record")
    expect(dialog).to_contain_text("+1 206 555 0143")
    dialog.get_by_label("Type").select_option(label="Lead")
    dialog.get_by_label("First name").fill("Rosa")
    dialog.get_by_label("Last name").fill("Diaz")
    page.screenshot(path=str(artifacts_dir() / "inbox-create-record-1366.png"))
    dialog.get_by_role("button", name="Create").click()

    # The header links the new lead, which has the number and shows the conversation.
    link = page.locator("[data-conv-facts] a", has_text="Rosa Diaz")
    expect(link).to_be_visible()
    lead = Lead.objects.get(organization=org_a, first_name="Rosa", last_name="Diaz")
    assert lead.mobile_phone_e164 == CUSTOMER
    conversation = Conversation.objects.get(customer_number=CUSTOMER)
    assert (conversation.regarding_type, conversation.regarding_id) == ("lead", lead.pk)
    link.click()
    expect(page).to_have_url(re.compile(rf"/crm/leads/{lead.pk}/$"))
    expect(page.locator(".qs-msg .qs-body", has_text="Any 3-bedrooms?")).to_be_visible()


NOTIFICATION_PROBE = """
window.__notifications = [];
const RealNotification = window.Notification;
class RecordedNotification extends RealNotification {
  constructor(title, options) {
    super(title, options);
    window.__notifications.push({ title, body: (options && options.body) || "" });
  }
}
window.Notification = RecordedNotification;
// The tab is in the background: that is when a desktop notification is shown.
Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
"""


def _background_tab(chromium, app_server, org_a, aaron):
    """Aaron with desktop notifications on, notifications allowed, the tab in the background (the probe
    records what would be shown); logged in, on no page yet."""
    membership = aaron.memberships.get(organization=org_a)
    MemberMessagingSettings.objects.update_or_create(
        membership=membership, defaults={"organization": org_a, "desktop_notifications": True}
    )
    context = chromium.new_context(viewport={"width": 1366, "height": 900})
    context.grant_permissions(["notifications"], origin=app_server.base_url)
    context.add_init_script(NOTIFICATION_PROBE)
    page = context.new_page()
    page.set_default_timeout(20_000)
    return context, page


def test_a_new_text_shows_a_desktop_notification_while_the_tab_is_in_the_background(
    chromium, twilio_sandbox, app_server, line, org_a, aaron
):
    context, page = _background_tab(chromium, app_server, org_a, aaron)
    console = []
    page.on("console", lambda m: console.append(m.text))
    page.on("pageerror", lambda e: console.append(str(e)))
    page.goto(app_server.base_url + "/login/")
    page.get_by_label("Email").fill("aaron")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login/" not in url)
    page.goto(app_server.base_url + "/")
    page.locator("body[data-live=connected]").wait_for()
    page.wait_for_load_state("networkidle")  # the member's preferences (desktop: on) have loaded
    assert page.evaluate("Notification.permission") == "granted"

    twilio_sandbox.inbound(from_=CUSTOMER, to=line.phone_number, body="Is the open house still on today?")
    expect(page.get_by_test_id("bell-count")).to_have_text("1")
    wait_until(
        lambda: page.evaluate("window.__notifications.length") > 0, message=f"no notification: {console}"
    )
    assert not console, console
    shown = page.evaluate("window.__notifications")
    assert len(shown) == 1
    assert "+1 206 555 0143" in shown[0]["title"]
    assert shown[0]["body"] == "Is the open house still on today?"
    context.close()


def _lead_with_thread(org, owner, number, body="Hello from Maria"):
    lead = Lead.objects.create(
        organization=org, first_name="Maria", last_name="Lopez", mobile_phone=CUSTOMER, owner=owner
    )
    conversation = ConversationFactory(
        phone_number=number, customer_number=CUSTOMER, owner=owner, record_type="lead", record_id=lead.pk
    )
    MessageFactory(conversation=conversation, body=body, from_number=CUSTOMER, to_number=number.phone_number)
    return lead, conversation


def test_two_agents_on_one_conversation_see_each_other_typing_and_viewing(
    chromium, asgi_server, org_a, aaron, amy
):
    number = PhoneNumberFactory(account=TwilioAccountFactory(organization=org_a), label="Sales line")
    MessagingSettingsFactory(organization=org_a, agents_may_use_any_number=True, default_number=number)
    lead, _conversation = _lead_with_thread(org_a, aaron, number)
    path = f"/crm/leads/{lead.pk}/"
    aaron_page = log_in(chromium, asgi_server.base_url, "aaron", path)
    amy_page = log_in(chromium, asgi_server.base_url, "amy", path)
    for page in (aaron_page, amy_page):
        page.locator(".qs-msg .qs-body", has_text="Hello from Maria").wait_for()

    aaron_name = aaron.get_full_name()
    presence = amy_page.get_by_test_id("presence")
    expect(presence).to_have_text(f"Also viewing: {aaron_name}")
    expect(aaron_page.get_by_test_id("presence")).to_have_text("Also viewing: Amy Agent")

    expect(aaron_page.locator(".qs-text")).to_be_enabled()
    aaron_page.locator(".qs-text").press_sequentially("I can show you the flat at", delay=20)
    expect(presence).to_have_text(f"{aaron_name} is typing…")
    amy_page.screenshot(path=str(artifacts_dir() / "record-widget-typing-1366.png"))
    amy_page.set_viewport_size({"width": 375, "height": 800})
    amy_page.screenshot(path=str(artifacts_dir() / "record-widget-typing-375.png"), full_page=True)
    amy_page.set_viewport_size({"width": 1366, "height": 900})

    # Emptying the box stops "typing"; leaving the page stops "viewing" at once (the socket says "left").
    aaron_page.locator(".qs-text").fill("")
    aaron_page.locator(".qs-text").dispatch_event("input")
    expect(presence).to_have_text(f"Also viewing: {aaron_name}")
    aaron_page.goto(asgi_server.base_url + "/")
    expect(presence).to_be_hidden()


def test_a_live_text_is_painted_from_its_frame_without_fetching_anything(
    chromium, twilio_sandbox, app_server, line, org_a, aaron
):
    lead, conversation = _lead_with_thread(org_a, aaron, line)
    page = log_in(chromium, app_server.base_url, "aaron", f"/crm/leads/{lead.pk}/")
    page.locator(".qs-msg .qs-body", has_text="Hello from Maria").wait_for()
    page.wait_for_load_state("networkidle")
    thread_requests = []
    page.on(
        "request",
        lambda request: (
            thread_requests.append(request.url)
            if re.search(r"/api/v1/(texting|conversations/\d+/messages)", request.url)
            else None
        ),
    )
    first_bubble = page.locator(".qs-msg").first.element_handle()

    twilio_sandbox.inbound(from_=CUSTOMER, to=line.phone_number, body="Can we make it 11 instead?")
    page.locator(".qs-msg .qs-body", has_text="Can we make it 11 instead?").wait_for()
    assert thread_requests == []
    # Added at the end: the bubbles already shown were not redrawn.
    assert page.evaluate("(el) => el.isConnected", first_bubble)
    assert Message.objects.filter(conversation=conversation).count() == 2


def test_times_are_shown_in_the_organizations_time_zone_not_the_browsers(chromium, asgi_server, org_a, aaron):
    org_a.time_zone = "America/New_York"
    org_a.save()
    number = PhoneNumberFactory(account=TwilioAccountFactory(organization=org_a), label="Sales line")
    lead, conversation = _lead_with_thread(org_a, aaron, number, body="Sent at 15:30 UTC")
    Message.objects.filter(conversation=conversation).update(
        created_at=datetime(2026, 7, 1, 15, 30, tzinfo=UTC)
    )
    context = chromium.new_context(
        viewport={"width": 1366, "height": 900}, timezone_id="Asia/Tokyo", locale="en-US"
    )
    page = context.new_page()
    page.goto(asgi_server.base_url + "/login/")
    page.get_by_label("Email").fill("aaron")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login/" not in url)
    page.goto(asgi_server.base_url + f"/crm/leads/{lead.pk}/")
    bubble = page.locator(".qs-msg", has_text="Sent at 15:30 UTC")
    # 15:30 UTC is 11:30 in New York (and 00:30 the next day in Tokyo, the browser's zone).
    expect(bubble.locator("time")).to_have_text("11:30 AM")
    expect(page.locator(".qs-day")).to_have_text("Wednesday, July 1, 2026")
    context.close()


def test_a_record_lists_bulk_reassign_asks_whether_the_conversations_move(
    chromium, asgi_server, org_a, alice, aaron, amy
):
    number = PhoneNumberFactory(account=TwilioAccountFactory(organization=org_a), label="Sales line")
    leads, conversations = [], []
    for i, phone in enumerate(("+12065550151", "+12065550152")):
        lead = Lead.objects.create(
            organization=org_a, first_name="Buyer", last_name=f"No{i + 1}", mobile_phone=phone, owner=aaron
        )
        leads.append(lead)
        conversations.append(
            ConversationFactory(
                phone_number=number, customer_number=phone, owner=aaron, record_type="lead", record_id=lead.pk
            )
        )
    page = log_in(chromium, asgi_server.base_url, "alice", "/crm/leads/")
    for lead in leads:
        page.get_by_label(f"Select {lead}").check()
    page.get_by_label("New owner").select_option(label="Amy Agent")
    page.get_by_role("button", name="Reassign").click()

    expect(page.get_by_role("heading", name="2 leads have a new owner")).to_be_visible()
    listed = page.get_by_test_id("carry-over-conversations")
    expect(listed).to_contain_text("Buyer No1")
    expect(listed).to_contain_text(f"owned by {aaron.get_full_name()}")
    check_page(page, "carry-over-bulk")
    page.get_by_label(re.compile("Carry over to the new owner")).check()
    page.get_by_role("button", name="Continue").click()

    expect(page).to_have_url(re.compile(r"/crm/leads/\?"))
    expect(page.get_by_role("status").filter(has_text="2 conversation(s) moved to Amy Agent")).to_be_visible()
    for conversation in conversations:
        conversation.refresh_from_db()
        assert conversation.owner == amy


def test_the_changed_pages_pass_at_both_widths(chromium, asgi_server, org_a, alice, aaron):
    """The inbox with an automation's text in its list, My messages naming who sent each text, home."""
    from messaging.inbox.conversations import record_message

    number = PhoneNumberFactory(account=TwilioAccountFactory(organization=org_a), label="Sales line")
    lead, conversation = _lead_with_thread(org_a, aaron, number)
    record_message(
        conversation,
        direction="outbound",
        source="automation",
        source_label="Open house",
        status="delivered",
        from_number=number.phone_number,
        to_number=CUSTOMER,
        body="Thanks for visiting the open house!",
    )
    page = log_in(chromium, asgi_server.base_url, "aaron", "/inbox/")
    preview = row(page, "Thanks for visiting").get_by_test_id("conversation-preview")
    expect(preview).to_have_text("Automation: Open house: Thanks for visiting the open house!")
    check_page(page, "inbox-automation-preview", ready=lambda p: row(p, "Thanks for visiting").wait_for())

    page.goto(asgi_server.base_url + "/messages/")
    expect(page.locator("tbody tr", has_text="Thanks for visiting")).to_contain_text(
        "Sent by Automation: Open house"
    )
    check_page(page, "my-messages", ready=lambda p: p.locator("tbody tr").first.wait_for())

    page.goto(asgi_server.base_url + "/")
    expect(page.locator(".recent-preview")).to_contain_text("Automation: Open house: Thanks")
    check_page(page, "home-agent-recent", ready=lambda p: p.get_by_test_id("workspace-summary").wait_for())


def test_a_text_heard_before_the_preferences_load_still_shows_its_desktop_notification(
    chromium, twilio_sandbox, app_server, line, org_a, aaron
):
    """The page's first summary (which carries the member's desktop and sound preferences) may come back after
    the first text's live event: that text waits for the preferences instead of being dropped."""
    context, page = _background_tab(chromium, app_server, org_a, aaron)
    page.goto(app_server.base_url + "/login/")
    page.get_by_label("Email").fill("aaron")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login/" not in url)
    held = []
    page.route("**/api/v1/notifications/summary", lambda route: held.append(route))  # answered later
    page.goto(app_server.base_url + "/")
    page.locator("body[data-live=connected]").wait_for()
    for _ in range(200):
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the page did not ask for its summary"

    twilio_sandbox.inbound(from_=CUSTOMER, to=line.phone_number, body="Still on for today?")
    expect(page.get_by_test_id("bell-count")).to_have_text("1")  # the event arrived before the summary
    assert page.evaluate("window.__notifications.length") == 0
    for route in held:
        route.continue_()
    for _ in range(200):
        if page.evaluate("window.__notifications.length"):
            break
        page.wait_for_timeout(50)
    shown = page.evaluate("window.__notifications")
    assert [n["body"] for n in shown] == ["Still on for today?"]
    context.close()
