"""In the browser: an admin adds a "notify" step in the builder and tests the automation on a record found by
name; the record's owner then finds the note in the bell's panel, linking to the record. The builder page
passes the page checks (no overflow at 1366 and 375 px, no serious axe violation)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from campaigns.models import Automation
from campaigns.services import do_create_automation, do_run_automation, do_set_automation_status
from crm.models import Lead
from tenancy.models import Role
from tests import factories_send
from tests.automation_helpers import daytime_number
from tests.factories import PASSWORD, MembershipFactory, TeamFactory
from tests.page_checks import check_page
from tests.plugins.servers import start_asgi_server

WAIT = 30_000
expect.set_options(timeout=WAIT)

pytestmark = pytest.mark.django_db(transaction=True)

# The run started by this test goes inline here (production mode has no worker in this test).
inline_tasks = factories_send.inline_tasks


def log_in(page, base: str, username: str) -> None:
    page.goto(base + "/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


@pytest.mark.browser
def test_an_admin_adds_a_notify_step_tests_it_on_a_found_record_and_the_owner_sees_the_note(
    page, tmp_path, org_a, inline_tasks
):
    admin = MembershipFactory(
        organization=org_a,
        role=Role.ADMIN,
        user__username="ada",
        user__first_name="Ada",
        user__last_name="Admin",
    ).user
    owner_membership = MembershipFactory(
        organization=org_a,
        role=Role.AGENT,
        user__username="otto",
        user__first_name="Otto",
        user__last_name="Owner",
    )
    owner = owner_membership.user
    TeamFactory(organization=org_a, name="Closers").members.add(owner_membership)
    dana = Lead.objects.create(
        organization=org_a, first_name="Dana", last_name="Buyer", mobile_phone=daytime_number(), owner=owner
    )
    Lead.objects.create(
        organization=org_a, first_name="Kim", last_name="Other", mobile_phone=daytime_number()
    )
    automation = do_create_automation(
        org_a,
        admin,
        name="Hot lead",
        trigger={"type": "record_created", "record_type": "lead"},
        steps=[{"type": "notify", "user": "owner", "text": "Call {{first_name}} today"}],
    )
    server = start_asgi_server(tmp_path)
    try:
        page.set_default_timeout(WAIT)
        base = server.base_url
        log_in(page, base, "ada")
        page.goto(f"{base}/settings/automations/{automation.pk}")
        expect(page.get_by_label("Notify", exact=True)).to_have_value("owner")
        page.locator(".add-step-type").select_option("notify")
        page.get_by_role("button", name="Add", exact=True).click()
        page.get_by_label("Notify", exact=True).nth(1).select_option(label="Team: Closers")
        page.get_by_label("Message").nth(1).fill("{{first_name}} is hot: {{owner.first_name}}, call now")
        page.get_by_role("button", name="Save and activate").click()
        expect(page.get_by_role("button", name="Pause")).to_be_visible()  # saved, active, page reloaded
        automation.refresh_from_db()
        assert automation.status == Automation.Status.ACTIVE
        team_step = automation.steps[1]
        assert team_step["type"] == "notify" and "team" in team_step and "user" not in team_step

        # The dry run's record is found by name, not typed as an id.
        page.get_by_label("Find a record").fill("Dana")
        expect(page.locator("#dry-run select[name=record]")).to_contain_text("Dana Buyer")
        page.get_by_role("button", name="Test", exact=True).click()
        result = page.locator(".dry-run-result")
        expect(result).to_contain_text("Hot lead: Call Dana today")
        expect(result).to_contain_text("Notify Otto Owner in the app")
        expect(result).to_contain_text("Hot lead: Dana is hot: Otto, call now")
        check_page(page, "automation-notify-builder")

        do_set_automation_status(automation, admin, Automation.Status.ACTIVE)
        do_run_automation(automation, admin, dana)
        context = page.context.browser.new_context()
        owner_page = context.new_page()
        owner_page.set_default_timeout(WAIT)
        log_in(owner_page, base, "otto")
        owner_page.locator("[data-bell-button]").click()
        notes = owner_page.locator("[data-testid=notification]")
        expect(notes.first).to_contain_text("From an automation")
        expect(owner_page.locator("[data-bell-list]")).to_contain_text("Hot lead: Call Dana today")
        link = notes.filter(has_text="Call Dana today").get_by_role("link", name="Open")
        assert link.get_attribute("href") == reverse("crm-lead-detail", args=[dana.pk])
        for width in (1366, 375):
            owner_page.set_viewport_size({"width": width, "height": 800})
            owner_page.screenshot(path=str(tmp_path / f"bell-automation-note-{width}.png"), full_page=True)
        context.close()
    finally:
        server.stop()
