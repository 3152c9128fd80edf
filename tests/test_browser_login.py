"""A person logs in through the real login page, served by the production ASGI server, in Chromium."""

import pytest
from playwright.sync_api import expect

from tenancy.models import Role
from tests.factories import PASSWORD, MembershipFactory, OrganizationFactory

pytestmark = [pytest.mark.browser]


@pytest.fixture
def carol(transactional_db):
    org = OrganizationFactory(name="Initech", slug="initech")
    return MembershipFactory(organization=org, role=Role.ADMIN, user__username="carol").user


def test_user_logs_in_and_sees_their_organization(page, asgi_server, carol):
    page.goto(asgi_server.base_url + "/settings/members/")
    expect(page).to_have_url(f"{asgi_server.base_url}/login/?next=/settings/members/")
    page.get_by_label("Email").fill("carol")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{asgi_server.base_url}/settings/members/")
    expect(page.get_by_test_id("org-name")).to_have_text("Initech")
    expect(page.get_by_test_id("seats")).to_contain_text("1 / 10 seats")


def test_wrong_password_shows_the_error(page, asgi_server, carol):
    page.goto(asgi_server.base_url + "/login/")
    page.get_by_label("Email").fill("carol")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Please enter a correct email and password")
