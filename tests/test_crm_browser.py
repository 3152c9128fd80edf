"""Real browser, real ASGI server: an agent creates a contact through the UI, sees a phone error first."""

from __future__ import annotations

import pytest

from crm.models import Contact
from tests.factories import PASSWORD


@pytest.mark.browser
def test_agent_creates_a_contact_through_the_ui(page, asgi_server, aaron, alice):
    page.goto(asgi_server.base_url + "/login/")
    page.fill("input[name=username]", "aaron")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(asgi_server.base_url + "/")

    page.click("text=Records")
    page.click("nav.tabs >> text=Contacts")
    page.click("text=New contact")
    page.fill("input[name=first_name]", "Justin")
    page.fill("input[name=last_name]", "Reed")
    page.fill("input[name=mobile_phone]", "555-12")
    page.click("button:has-text('Save')")
    page.get_by_text("'555-12' is not a valid phone number for Contact mobile.").wait_for()
    assert not Contact.objects.exists()

    page.fill("input[name=mobile_phone]", "(415) 555-0134")
    page.click("button:has-text('Save')")
    page.get_by_test_id("record-title").wait_for()
    assert "Justin Reed" in page.get_by_test_id("record-title").inner_text()
    assert page.locator("#sms-widget").count() == 1
    contact = Contact.objects.get()
    assert (contact.mobile_phone_e164, contact.owner) == ("+14155550134", aaron)

    # The list finds it by a differently formatted number.
    page.click("text=← Contacts")
    page.fill("[data-testid=crm-search]", "+1 415 555 0134")
    page.click("button:has-text('Filter')")
    page.locator("table.records >> text=Justin Reed").wait_for()


@pytest.mark.browser
def test_admin_imports_a_csv_and_watches_the_progress_bar(
    page, asgi_server, alice, request, settings, tmp_path
):
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        request.getfixturevalue("celery_worker_process")  # production mode: a real worker runs the task
    csv_path = tmp_path / "leads.csv"
    rows = "".join(f"Lead{i},Person,(415) 555-{i:04d},src{i}\n" for i in range(300))
    csv_path.write_text("First Name,Last Name,Cell,Lead Source\n" + rows + ",,4155559999,\n")

    page.goto(asgi_server.base_url + "/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    # An admin without a verified Twilio account lands on the Twilio settings page.
    page.wait_for_url(lambda url: "/login/" not in url)
    page.goto(asgi_server.base_url + "/crm/imports/")
    page.set_input_files("input[name=file]", str(csv_path))
    page.click("button:has-text('Upload and preview')")
    page.get_by_text("Lead0").first.wait_for()  # the preview
    assert page.locator("select[name=col_2]").input_value() == "mobile_phone"  # guessed from "Cell"
    page.click("button:has-text('Start import')")
    page.locator("#import-status >> text=Done").wait_for(timeout=60_000)
    counts = page.get_by_test_id("import-counts").inner_text()
    assert "300 imported" in counts and "1 rejected" in counts
    assert page.locator("progress").get_attribute("value") == "100"
    page.get_by_text("Missing name").wait_for()
