"""In a real browser: an admin invites someone who already has an account elsewhere; they accept it."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tenancy.models import Membership
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser]
SHOTS = Path("/tmp/web")


def _log_in(page, server, username):
    page.goto(server.base_url + "/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)


def test_admin_invites_bob_and_bob_accepts_from_his_home_page(page, asgi_server, alice, bob, org_a):
    SHOTS.mkdir(parents=True, exist_ok=True)
    _log_in(page, asgi_server, "alice")
    page.goto(asgi_server.base_url + "/settings/members/")
    page.get_by_label("Email").fill("bob@globex.test")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_role("status")).to_contain_text("Invitation sent to bob@globex.test (Agent).")
    expect(page.get_by_test_id("pending-invitations")).to_contain_text("bob@globex.test")
    for width in (1366, 375):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"invitations-admin-{width}.png"), full_page=True)
    assert not Membership.objects.filter(user=bob, organization=org_a).exists()

    page.context.clear_cookies()
    page.set_viewport_size({"width": 1366, "height": 900})
    _log_in(page, asgi_server, "bob")
    page.goto(asgi_server.base_url + "/")
    invitations = page.get_by_test_id("invitations")
    expect(invitations).to_contain_text("Acme invites you to join as agent")
    for width in (1366, 375):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"invitations-invitee-{width}.png"), full_page=True)
    page.get_by_role("button", name="Accept the invitation to Acme").click()
    expect(page.get_by_role("status")).to_contain_text("You joined Acme.")
    expect(page.get_by_test_id("org-name")).to_contain_text("Acme")
    assert Membership.objects.filter(user=bob, organization=org_a, is_active=True).exists()
