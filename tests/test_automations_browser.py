"""An admin builds "when a lead is created with source = open house, text them the welcome template, wait 2
days, if no reply text the follow-up" in Settings → Automations, activates it, and sees the run log fill in
when such a lead arrives (real server, sandbox; a Celery worker in production mode)."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from playwright.sync_api import expect

from campaigns.models import Automation, Enrollment
from crm.services import do_create_record
from messaging.models import Message
from tenancy.models import Membership, Role
from tests import factories_send
from tests.automation_helpers import daytime_number, template
from tests.factories import PASSWORD, MembershipFactory
from tests.factories_send import FAST_RATES
from tests.plugins.servers import start_asgi_server, wait_until
from tests.test_automations_notify_browser import log_in

line = factories_send.line
fast_rates = factories_send.fast_rates
WAIT = 30_000

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sandbox_env(twilio_sandbox, monkeypatch):
    for key, value in {
        "TWILIO_API_BASE_URL": twilio_sandbox.base_url,
        "QUICKSEND_SEND_RATES": json.dumps(FAST_RATES),
    }.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def worker_if_production(request, sandbox_env):
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return None
    return request.getfixturevalue("celery_worker_process")


@pytest.mark.browser
def test_an_admin_builds_the_open_house_automation_and_watches_it_run(
    page, tmp_path, org_a, line, sandbox_env, worker_if_production, tmp_path_factory
):
    admin = MembershipFactory(
        organization=org_a, role=Role.ADMIN, user__username="ada", user__first_name="Ada"
    ).user
    template(org_a, "Hi {{first_name}}, thanks for visiting the open house!", "Welcome")
    template(org_a, "Hi {{first_name}}, any questions about the house?", "Follow-up")
    server = start_asgi_server(tmp_path)
    try:
        page.set_default_timeout(WAIT)
        base = server.base_url
        page.goto(base + "/login/")
        page.fill("input[name=username]", "ada")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.goto(base + "/settings/automations/")
        page.get_by_role("link", name="Create your first automation").click()

        page.get_by_label("Name", exact=True).fill("Open house welcome")
        page.get_by_role("button", name="Add a condition").click()
        page.get_by_label("Field", exact=True).fill("source")
        page.get_by_label("Value", exact=True).fill("open house")
        page.get_by_label("Template", exact=True).select_option(label="Welcome")
        page.locator(".add-step-type").select_option("wait")
        page.get_by_role("button", name="Add", exact=True).click()
        page.get_by_label("Wait for", exact=True).select_option("reply")
        page.get_by_label("How long", exact=True).fill("2")
        page.locator(".add-step-type").select_option("branch")
        page.get_by_role("button", name="Add", exact=True).click()
        page.locator(".add-step-type").select_option("send_template")
        page.get_by_role("button", name="Add", exact=True).click()
        page.get_by_label("Template", exact=True).nth(1).select_option(label="Follow-up")
        page.screenshot(path=str(tmp_path / "automation-builder-1366.png"), full_page=True)
        page.get_by_role("button", name="Save and activate").click()
        expect(page.get_by_role("heading", name="Run log")).to_be_visible()

        automation = Automation.objects.get(organization=org_a)
        assert automation.status == "active"
        assert [s["type"] for s in automation.steps] == ["send_template", "wait", "branch", "send_template"]
        assert automation.steps[1] == {"type": "wait", "until": "reply", "minutes": 2 * 24 * 60}
        assert automation.conditions["rules"] == [{"field": "source", "op": "equals", "value": "open house"}]

        do_create_record(
            org_a,
            admin,
            "lead",
            {
                "first_name": "Dana",
                "mobile_phone": daytime_number(),
                "custom_fields": {"source": "open house"},
            },
        )
        wait_until(
            lambda: (
                Message.objects.filter(organization=org_a, source="automation").exclude(sid=None).exists()
            ),
            timeout=40,
            message="the welcome text was not sent",
        )
        page.reload()
        log = page.locator("table.run-log")
        expect(log).to_contain_text("Sent “Welcome”")
        expect(log).to_contain_text("Wait for a reply (at most 2 days)")
        assert Enrollment.objects.get(automation=automation).status == "waiting"
        page.set_viewport_size({"width": 375, "height": 800})
        page.screenshot(path=str(tmp_path / "automation-run-log-375.png"), full_page=True)
        assert page.evaluate("document.querySelector('form.builder').scrollWidth <= 375")
    finally:
        server.stop()
    assert Membership.objects.filter(user=admin).exists()


@pytest.mark.browser
def test_what_an_admin_types_before_the_builder_script_runs_is_kept(page, tmp_path, org_a):
    """The builder's script arrives late (held here until the name is typed): the name and the safety
    fields the admin already set survive it, and the automation is saved with them."""
    MembershipFactory(organization=org_a, role=Role.ADMIN, user__username="ada")
    template(org_a, "Hi {{first_name}}!", "Welcome")
    server = start_asgi_server(tmp_path)
    held = []
    try:
        page.set_default_timeout(WAIT)
        base = server.base_url
        log_in(page, base, "ada")
        page.route("**/automation_builder*.js", lambda route: held.append(route))
        page.goto(base + "/settings/automations/new", wait_until="commit")
        page.get_by_label("Name", exact=True).fill("Typed early")
        page.get_by_label("Never text the same record twice within (hours)").fill("48")
        for _ in range(100):  # Playwright runs the route handler only while the page is waited on
            if held:
                break
            page.wait_for_timeout(100)
        assert held, "the builder script was never asked for"
        assert page.locator("ol.steps li").count() == 0  # the script has not run yet
        held[0].continue_()
        page.get_by_label("Template", exact=True).select_option(label="Welcome")
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.get_by_role("heading", name="Run log")).to_be_visible(timeout=WAIT)
        automation = Automation.objects.get(organization=org_a)
        assert (automation.name, automation.reenroll_window_hours) == ("Typed early", 48)
    finally:
        server.stop()
