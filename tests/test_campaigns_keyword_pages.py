"""Settings → Campaigns → Keywords and sending speed: an admin adds and removes keyword opt-ins and gives a
number its own campaign speed from the page; bad input is refused with what to fix; agents and other
organizations get nothing."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from campaigns.drip.models import KeywordOptIn, SenderRate
from messaging.services import throttle
from tenancy.models import Role
from tests.campaign_helpers import campaign
from tests.factories import PASSWORD, MembershipFactory
from tests.factories_messaging import PhoneNumberFactory, TwilioAccountFactory
from tests.page_checks import check_page

PAGE = "/settings/campaigns/keywords"


@pytest.fixture
def number(org_a):
    return PhoneNumberFactory(account=TwilioAccountFactory(organization=org_a), label="Flyer line")


def _messages(answer) -> str:
    return answer.content.decode()


@pytest.mark.django_db
def test_an_admin_adds_a_keyword_linked_to_a_campaign_and_removes_it(alice_client, org_a, alice, number):
    drip = campaign(org_a, alice, [number], steps=[{"body": "Acme: welcome"}])
    answer = alice_client.post(
        PAGE,
        {
            "action": "add_keyword",
            "keyword": "join",
            "number": number.pk,
            "campaign": drip.pk,
            "brand": "Acme",
            "frequency": "Up to 4 msgs/month",
        },
        follow=True,
    )
    assert "Texting JOIN to" in _messages(answer)
    optin = KeywordOptIn.objects.get(organization=org_a)
    assert (optin.keyword, optin.number, optin.campaign, optin.brand) == ("JOIN", number, drip, "Acme")
    page = _messages(alice_client.get(PAGE))
    assert "JOIN" in page and drip.name in page
    answer = alice_client.post(PAGE, {"action": "delete_keyword", "id": optin.pk}, follow=True)
    assert "JOIN no longer opts people in" in _messages(answer)
    assert not KeywordOptIn.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "keyword,expected",
    [("STOP", "carrier keyword"), ("two words", "Keyword:"), ("JOIN", "already has this keyword")],
)
def test_a_bad_keyword_is_refused_with_what_to_fix_and_nothing_saved(
    alice_client, org_a, number, keyword, expected
):
    KeywordOptIn.objects.create(
        organization=org_a, number=number, keyword="JOIN", brand="Acme", frequency="4"
    )
    answer = alice_client.post(
        PAGE,
        {"action": "add_keyword", "keyword": keyword, "number": number.pk, "brand": "Acme", "frequency": "4"},
        follow=True,
    )
    assert "The keyword was not added" in _messages(answer) and expected in _messages(answer)
    assert KeywordOptIn.objects.count() == 1


@pytest.mark.django_db
def test_a_numbers_own_speed_is_set_changed_and_cleared(alice_client, org_a, number):
    answer = alice_client.post(
        PAGE, {"action": "set_rate", "number": number.pk, "segments_per_second": "4"}, follow=True
    )
    assert "now sends 4 segments a second" in _messages(answer)
    assert SenderRate.objects.get(number=number).segments_per_second == 4
    assert throttle._local.rates[number.pk] == 4
    alice_client.post(PAGE, {"action": "set_rate", "number": number.pk, "segments_per_second": "2.5"})
    assert SenderRate.objects.get(number=number).segments_per_second == 2.5
    answer = alice_client.post(
        PAGE, {"action": "set_rate", "number": number.pk, "segments_per_second": "5000"}, follow=True
    )
    assert "The speed was not changed" in _messages(answer)
    assert SenderRate.objects.get(number=number).segments_per_second == 2.5
    answer = alice_client.post(
        PAGE, {"action": "set_rate", "number": number.pk, "segments_per_second": ""}, follow=True
    )
    assert "sends at its type&#x27;s speed again" in _messages(answer)
    assert not SenderRate.objects.exists() and number.pk not in throttle._local.rates


@pytest.mark.django_db
def test_other_organizations_and_agents_get_nothing(alice_client, bob_client, aaron_client, org_a, number):
    optin = KeywordOptIn.objects.create(
        organization=org_a, number=number, keyword="JOIN", brand="A", frequency="4"
    )
    assert aaron_client.get(PAGE).status_code == 403
    assert aaron_client.post(PAGE, {"action": "delete_keyword", "id": optin.pk}).status_code == 403
    bob_page = bob_client.get(PAGE)
    assert bob_page.status_code == 200 and "<strong>JOIN</strong>" not in bob_page.content.decode()
    assert number.phone_number not in bob_page.content.decode()
    assert bob_client.post(PAGE, {"action": "delete_keyword", "id": optin.pk}).status_code == 404
    assert (
        bob_client.post(
            PAGE, {"action": "set_rate", "number": number.pk, "segments_per_second": "9"}
        ).status_code
        == 404
    )
    answer = bob_client.post(
        PAGE,
        {"action": "add_keyword", "keyword": "HELLO", "number": number.pk, "brand": "G", "frequency": "4"},
    )
    assert answer.status_code == 302
    assert KeywordOptIn.objects.count() == 1 and not SenderRate.objects.exists()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_admin_adds_a_keyword_and_a_speed_in_the_browser(page, asgi_server, org_a, number):
    MembershipFactory(organization=org_a, role=Role.ADMIN, user__username="ada")
    PhoneNumberFactory(account=number.account, label="Toll-free line", number_type="tollfree")
    base = asgi_server.base_url
    page.goto(base + "/login/")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)
    page.goto(base + "/settings/campaigns/")
    page.get_by_role("link", name="Keywords and sending speed").click()
    page.get_by_label("Keyword (one word)").fill("JOIN")
    page.get_by_label("Brand").fill("Acme Realty")
    page.get_by_label("Frequency").fill("Up to 4 msgs/month")
    page.get_by_role("button", name="Add keyword").click()
    expect(page.get_by_text("Texting JOIN to")).to_be_visible()
    expect(page.get_by_role("button", name="Remove the keyword JOIN")).to_be_visible()
    page.get_by_label("Own speed of Flyer line").fill("2")
    page.get_by_label("Own speed of Flyer line").press("Enter")
    expect(page.get_by_text("now sends 2 segments a second")).to_be_visible()
    assert SenderRate.objects.get(number=number).segments_per_second == 2
    check_page(page, "campaign-keywords")
