"""Real browser, real ASGI server: an admin writes a template with a merge field in Settings → Templates and
previews it on a lead whose name turns the text into UCS-2."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from templates_app.models import MessageTemplate
from tests.factories import PASSWORD
from tests.factories_crm import LeadFactory
from tests.plugins.servers import wait_until


def _shots_dir() -> Path | None:
    # Screenshots for people to look at, only when asked for (TEMPLATES_SCREENSHOTS=/some/dir).
    target = os.environ.get("TEMPLATES_SCREENSHOTS")
    if not target:
        return None
    path = Path(target)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _fits_a_phone(page) -> None:
    # The page's own content fits 375 px once the resize has reached the layout (the shared top bar is the
    # layout's, measured on its own pages).
    fits = "window.innerWidth === 375 && document.querySelector('main').scrollWidth <= 375"
    wait_until(lambda: page.evaluate(fits), timeout=10, message="the page's content is wider than 375 px")


@pytest.mark.browser
def test_admin_creates_a_template_with_a_merge_field_and_previews_it_on_a_lead(
    page, asgi_server, alice, org_a
):
    LeadFactory(organization=org_a, first_name="Olivia", last_name="Brown")
    LeadFactory(organization=org_a, first_name="Chloë", last_name="Martin", company="Martin Homes")
    shots = _shots_dir()
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(asgi_server.base_url + "/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)

    page.goto(asgi_server.base_url + "/settings/organization/")
    page.click("nav.tabs >> text=Templates")
    page.get_by_text("Create your first template").wait_for()
    page.click("text=New template")
    page.fill("input[name=name]", "Open house welcome")
    page.select_option("select[name=record_type]", "lead")
    # The picker follows the record type: lead fields arrive from the merge-fields API.
    page.locator("[data-insert-field] option[value=first_name]").wait_for(state="attached")
    page.fill("input[name=shortcode]", "welcome")
    body = page.locator("textarea[name=body]")
    body.fill("Hi ")
    body.press("End")
    page.select_option("[data-insert-field]", "first_name")
    assert body.input_value() == "Hi {{first_name}}"
    body.press("End")
    body.type(", welcome to {{org.name}}!")

    chloe = page.locator("[data-preview-record] option", has_text="Chloë Martin").get_attribute("value")
    page.select_option("[data-preview-record]", chloe)
    preview = page.get_by_test_id("preview-text")
    expect(preview).to_have_text("Hi Chloë, welcome to Acme!")
    expect(page.locator("[data-preview-encoding]")).to_have_text(re.compile(r"^UCS-2"))
    assert page.locator("[data-preview-segments]").inner_text() == "1"
    expect(page.locator("[data-preview-note]")).to_contain_text("because of: ë")
    if shots:
        page.screenshot(path=str(shots / "editor-1366.png"), full_page=True)

    # The same body on a name GSM-7 can carry stays GSM-7.
    olivia = page.locator("[data-preview-record] option", has_text="Olivia Brown").get_attribute("value")
    page.select_option("[data-preview-record]", olivia)
    expect(page.locator("[data-preview-encoding]")).to_have_text("GSM-7")
    expect(preview).to_have_text("Hi Olivia, welcome to Acme!")

    # Any record can be found by name, not only the recent ones offered.
    page.fill("[data-preview-search]", "Martin")
    page.get_by_text("1 found: pick one below.").wait_for()
    expect(preview).to_have_text("Hi Chloë, welcome to Acme!")

    # A typo is named before saving, and refused on save.
    body.type(" {{frist_name}}")
    page.locator("[data-preview-problems]", has_text="did you mean {{first_name}}?").wait_for()
    if shots:
        page.set_viewport_size({"width": 375, "height": 800})
        _fits_a_phone(page)
        page.screenshot(path=str(shots / "editor-375.png"), full_page=True)
        page.set_viewport_size({"width": 1366, "height": 900})
    page.click("button:has-text('Create template')")
    page.get_by_test_id("body-errors").get_by_text("Unknown merge field {{frist_name}}").wait_for()
    assert not MessageTemplate.objects.exists()

    page.locator("textarea[name=body]").fill("Hi {{first_name}}, welcome to {{org.name}}!")
    page.click("button:has-text('Create template')")
    page.get_by_test_id("template-table").get_by_text("Open house welcome").wait_for()
    template = MessageTemplate.objects.get()
    assert (template.body, template.record_type, template.shortcode, template.visibility) == (
        "Hi {{first_name}}, welcome to {{org.name}}!",
        "lead",
        "welcome",
        "shared",
    )
    if shots:
        page.screenshot(path=str(shots / "list-1366.png"), full_page=True)
    page.set_viewport_size({"width": 375, "height": 800})
    _fits_a_phone(page)
    if shots:
        page.screenshot(path=str(shots / "list-375.png"), full_page=True)
