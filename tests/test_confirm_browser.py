"""Destructive actions ask first, in a real dialog that works under the Content Security Policy, and names
put in the confirmation text never run as code."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tenancy.models import Membership, Role, Team
from tests.factories import PASSWORD, MembershipFactory

pytestmark = [pytest.mark.browser]

XSS_NAME = "' + alert(document.domain) + '"
SHOTS = Path("/tmp/web")


@pytest.fixture
def people(transactional_db, org_a, alice):
    dave = MembershipFactory(
        organization=org_a, role=Role.AGENT, user__username="dave", user__email="dave@acme.test"
    )
    team = Team.objects.create(organization=org_a, name=XSS_NAME)
    team.members.add(dave)
    return dave, team


def _log_in(page, server, username="alice"):
    page.goto(server.base_url + "/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)


def _assert_no_serious_axe_violations(page, selector: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, context=selector)
    serious = [
        f"{v['id']}: {v['help']}"
        for v in results.response["violations"]
        if v.get("impact") in ("serious", "critical")
    ]
    assert serious == []


def _watch_for_script_dialogs(page) -> list[str]:
    """Every alert/confirm/prompt the page opens (none may open)."""
    opened: list[str] = []

    def on_dialog(dialog):
        opened.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return opened


def test_remove_asks_in_a_dialog_cancel_keeps_the_member_and_confirm_removes_them(page, asgi_server, people):
    dave, _team = people
    script_dialogs = _watch_for_script_dialogs(page)
    _log_in(page, asgi_server)
    page.goto(asgi_server.base_url + "/settings/members/")

    page.get_by_role("button", name="Remove dave@acme.test").click()
    dialog = page.get_by_role("dialog", name="Remove member")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Remove")
    expect(dialog).to_contain_text("(dave@acme.test) from Acme?")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    _assert_no_serious_axe_violations(page, "#confirm-dialog")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1366, "height": 800})
    page.screenshot(path=str(SHOTS / "confirm-remove-1366.png"))
    page.set_viewport_size({"width": 375, "height": 700})
    page.screenshot(path=str(SHOTS / "confirm-remove-375.png"))
    page.set_viewport_size({"width": 1366, "height": 800})

    # Tab stays inside the dialog.
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Remove")).to_be_focused()
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()

    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert Membership.objects.filter(pk=dave.pk).exists()

    # Esc cancels too, and focus returns to the button that opened the dialog.
    remove = page.get_by_role("button", name="Remove dave@acme.test")
    remove.click()
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(remove).to_be_focused()
    assert Membership.objects.filter(pk=dave.pk).exists()

    remove.click()
    dialog.get_by_role("button", name="Remove").click()
    expect(page.get_by_role("status")).to_contain_text("dave@acme.test removed.")
    assert not Membership.objects.filter(pk=dave.pk).exists()
    assert script_dialogs == []


def test_a_team_named_like_code_is_shown_as_text_and_never_runs(page, asgi_server, people):
    _dave, team = people
    script_dialogs = _watch_for_script_dialogs(page)

    # Without the Content Security Policy, so that only the template's escaping stands between the name
    # and the browser's script engine.
    def without_csp(route):
        response = route.fetch(max_redirects=0)
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-security-policy"}
        route.fulfill(response=response, headers=headers)

    page.route("**/settings/**", without_csp)
    _log_in(page, asgi_server)
    page.goto(f"{asgi_server.base_url}/settings/teams/{team.pk}")
    page.get_by_role("button", name="Delete team").click()
    dialog = page.get_by_role("dialog", name="Delete team")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"Delete the team “{XSS_NAME}”?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert Team.objects.filter(pk=team.pk).exists()

    page.get_by_role("button", name="Delete team").click()
    dialog.get_by_role("button", name="Delete team").click()
    page.wait_for_url(f"{asgi_server.base_url}/settings/teams/")
    assert not Team.objects.filter(pk=team.pk).exists()
    assert script_dialogs == []


def test_record_delete_asks_in_the_dialog_and_deletes_on_confirm(page, asgi_server, people, org_a):
    from crm.models import Lead
    from tests.factories_crm import LeadFactory

    lead = LeadFactory(organization=org_a, first_name="Maria", last_name="Lopez")
    script_dialogs = _watch_for_script_dialogs(page)
    _log_in(page, asgi_server)
    page.goto(f"{asgi_server.base_url}/crm/leads/{lead.pk}/")
    page.get_by_test_id("delete-record").click()
    dialog = page.get_by_role("dialog", name="Delete Maria Lopez?")
    expect(dialog).to_contain_text("It cannot be undone.")
    dialog.get_by_role("button", name="Cancel").click()
    assert Lead.objects.filter(pk=lead.pk).exists()
    page.get_by_test_id("delete-record").click()
    dialog.get_by_role("button", name="Delete").click()
    page.wait_for_url(f"{asgi_server.base_url}/crm/leads/")
    assert not Lead.objects.filter(pk=lead.pk).exists()
    assert script_dialogs == []
