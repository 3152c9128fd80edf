"""The admin connects Twilio from the settings page in a real browser, against the real ASGI server and the
sandbox."""

import re

import pytest
from playwright.sync_api import expect

from messaging.labels import format_number
from messaging.models import MessagingSettings, PhoneNumber, TwilioAccount
from tenancy.models import Role
from tests.factories import PASSWORD, MembershipFactory, OrganizationFactory
from tests.plugins.servers import start_asgi_server

AUTH_FAILED = "Authentication failed. Please check your Twilio SID and Auth Token."
SUCCESS = "Twilio credentials verified and saved successfully."
# Condition waits (never sleeps), generous because the machine is shared.
WAIT = 30_000


@pytest.fixture
def server_on_sandbox(transactional_db, tmp_path, twilio_sandbox):
    """The app under uvicorn, talking to the test session's sandbox."""
    server = start_asgi_server(tmp_path, extra_env={"TWILIO_API_BASE_URL": twilio_sandbox.base_url})
    yield server
    server.stop()


@pytest.mark.browser
def test_admin_connects_the_sandbox_labels_a_number_and_sets_the_default(
    page, server_on_sandbox, twilio_sandbox
):
    org = OrganizationFactory(name="Browser Realty", slug="browser-realty")
    MembershipFactory(organization=org, role=Role.ADMIN, user__username="admin-b", user__first_name="Ada")
    MembershipFactory(organization=org, role=Role.AGENT, user__username="agent-b", user__first_name="Abe")
    sid, token = twilio_sandbox.new_account(friendly_name="Browser account")
    local = twilio_sandbox.add_number(sid, friendly_name="Main line")
    twilio_sandbox.add_number(sid, "+18885550177", type="tollfree", friendly_name="Toll-free line")
    twilio_sandbox.add_number(sid, type="shortcode", friendly_name="Alerts", mms=False, voice=False)
    base = server_on_sandbox.base_url
    # The machine is shared: give each step room (a condition wait, not a sleep).
    page.set_default_timeout(30_000)

    # Log in: with nothing connected, the admin lands on the Twilio settings.
    page.goto(base + "/login/")
    page.fill("input[name=username]", "admin-b")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(base + "/settings/twilio/", timeout=WAIT)

    # A wrong token: the exact failure text, nothing stored.
    page.fill("input[name=account_sid]", sid)
    page.fill("input[name=auth_token]", "0" * 32)
    page.get_by_role("button", name="Verify and save").click()
    expect(page.get_by_test_id("connect-error")).to_have_text(AUTH_FAILED, timeout=WAIT)
    assert not TwilioAccount.objects.exists()

    # The right one: verified, saved, numbers fetched with their friendly names.
    page.fill("input[name=account_sid]", sid)
    page.fill("input[name=auth_token]", token)
    page.get_by_role("button", name="Verify and save").click()
    expect(page.get_by_role("status").first).to_have_text(SUCCESS, timeout=WAIT)
    expect(page.get_by_test_id("account-status")).to_have_text("Valid", timeout=WAIT)
    rows = page.get_by_test_id("number-row")
    expect(rows).to_have_count(3, timeout=WAIT)
    for name in ("Main line", "Toll-free line", "Alerts"):
        expect(page.get_by_test_id("numbers-table")).to_contain_text(name, timeout=WAIT)
    assert token not in page.content()

    # Label the local number and assign it to the agent.
    page.locator(f'[data-number="{local["phone_number"]}"]').get_by_role("link", name="Edit").click()
    page.fill("input[name=label]", "Support – NY")
    page.get_by_label(re.compile(r"Abe .*\(agent\)")).check()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page).to_have_url(base + "/settings/twilio/", timeout=WAIT)
    row = page.locator(f'[data-number="{local["phone_number"]}"]')
    expect(row).to_contain_text("Support – NY", timeout=WAIT)
    expect(row).to_contain_text("Abe", timeout=WAIT)

    # Make it the default sender.
    page.select_option(
        "select[name=default_number]", label="Support – NY · " + format_number(local["phone_number"])
    )
    page.get_by_role("button", name="Save sending settings").click()
    expect(page.get_by_role("status").first).to_have_text("Messaging settings saved.", timeout=WAIT)
    expect(row.get_by_test_id("default-badge")).to_be_visible(timeout=WAIT)

    number = PhoneNumber.objects.get(organization=org, phone_number=local["phone_number"])
    assert number.label == "Support – NY"
    assert [m.user.username for m in number.assigned_members.all()] == ["agent-b"]
    assert MessagingSettings.objects.get(organization=org).default_number == number

    # "Configure this number for me" points the number at QuickSend at the sandbox.
    page.locator(f'[data-number="{local["phone_number"]}"]').get_by_role("link", name="Edit").click()
    page.get_by_role("button", name="Configure this number for me").click()
    expect(page.get_by_test_id("number-sms-url")).to_have_text(base + "/api/incoming-sms", timeout=WAIT)
