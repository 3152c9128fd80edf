"""The texting widget on a record page, in a real browser against the real server (uvicorn; in production
mode PostgreSQL, Redis, a Celery worker) and the standalone Twilio sandbox: an agent texts a lead and sees it
delivered, the customer's reply appears without a reload, a free-words "stop" raises the banner, STOP turns
the composer off with the reason. Screenshots at 1366 and 375 px are saved under var/screenshots/; axe finds
no serious or critical violation."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect

from crm.models import Lead
from messaging.models import ConsentState, Message, MessageStatus
from messaging.twilio.public_urls import INCOMING_SMS_PATH
from tests.factories import PASSWORD
from tests.factories_crm import LeadFactory
from tests.factories_messaging import PhoneNumberFactory, TwilioAccountFactory
from tests.plugins import servers
from tests.plugins.sandbox import fresh_phone_number
from tests.plugins.servers import wait_until

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"


@pytest.fixture
def app_server(request, tmp_path, monkeypatch, twilio_sandbox, transactional_db):
    """The app under uvicorn, its PUBLIC_BASE_URL its own address, talking to the sandbox; in production mode
    with a Celery worker process."""
    port = servers.free_port()
    monkeypatch.setattr(servers, "free_port", lambda: port)
    env = {"TWILIO_API_BASE_URL": twilio_sandbox.base_url, "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    server = servers.start_asgi_server(tmp_path, extra_env=env)
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        request.getfixturevalue("celery_worker_process")
    yield server
    server.stop()


@pytest.fixture
def lead_line(twilio_sandbox, app_server, org_a, aaron):
    """A sandbox number of org A assigned to agent Aaron, and a lead of his with a fresh mobile number."""
    sid, token = twilio_sandbox.new_account()
    sandbox_number = twilio_sandbox.add_number(sid, sms_url=app_server.base_url + INCOMING_SMS_PATH)
    account = TwilioAccountFactory(organization=org_a, account_sid=sid, auth_token=token)
    number = PhoneNumberFactory(
        account=account, phone_number=sandbox_number["phone_number"], label="Sales line"
    )
    number.assigned_members.add(aaron.memberships.get(organization=org_a))
    lead = LeadFactory(
        organization=org_a,
        owner=aaron,
        first_name="Maria",
        last_name="Lopez",
        mobile_phone=fresh_phone_number(),
    )
    return {"number": number, "lead": lead, "server": app_server}


def _log_in(page, base_url: str, username: str) -> None:
    page.goto(base_url + "/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)


def _screenshots(page, name: str) -> None:
    """Screenshots at 1366 and 375 px. At those widths, and squeezed into a 320 px side panel, nothing in the
    widget may stick out of it, nor the widget out of the window."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width, panel in ((1366, None), (375, None), (1366, 320)):
        page.set_viewport_size({"width": width, "height": 900})
        page.locator(".qs-conv").wait_for()
        page.evaluate(
            "(panel) => { document.querySelector('#sms-widget').style.width = panel || ''; }",
            f"{panel}px" if panel else "",
        )
        if panel is None:
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
        else:
            page.locator("#sms-widget").screenshot(path=str(SCREENSHOTS / f"{name}-panel-{panel}.png"))
        widest = page.evaluate(
            """() => {
                const widget = document.querySelector('#sms-widget');
                const box = widget.getBoundingClientRect();
                let right = box.right;
                for (const el of widget.querySelectorAll('*')) {
                    const r = el.getBoundingClientRect();
                    const placed = getComputedStyle(el).position === 'absolute';
                    if (r.width && !placed) right = Math.max(right, r.right);
                }
                return [box.right, right, widget.scrollWidth - widget.clientWidth];
            }"""
        )
        widget_right, content_right, hidden_overflow = widest
        assert widget_right <= width and content_right <= widget_right + 0.5 and hidden_overflow <= 0, (
            f"the widget overflows at {width} px (panel {panel}): {widest}"
        )
    page.evaluate("document.querySelector('#sms-widget').style.width = ''")


def _serious_axe_violations(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.browser
def test_agent_texts_a_lead_sees_it_delivered_and_the_reply_arrives_live(
    page, twilio_sandbox, lead_line, aaron
):
    lead, number, base_url = lead_line["lead"], lead_line["number"], lead_line["server"].base_url
    customer = lead.mobile_phone_e164
    _log_in(page, base_url, "aaron")
    page.goto(base_url + lead.get_absolute_url())
    page.get_by_text("No texts yet. Write the first one below.").wait_for()
    assert page.locator(".qs-from option:checked").inner_text().startswith("Sales line")
    page.evaluate("window.notReloaded = true")

    # Keyboard only: the message box, a text, Enter.
    page.focus(".qs-text")
    page.keyboard.type("Hi Maria, the viewing is at 10 tomorrow 🙂")
    page.get_by_test_id("segment-count").wait_for()
    assert "UCS-2" in page.get_by_test_id("segment-count").inner_text()  # the emoji, counted by the server
    page.keyboard.press("Enter")
    page.locator(".qs-out [data-testid=message-status]", has_text="Delivered").wait_for(timeout=30_000)
    sent = Message.objects.get(direction="outbound", to_number=customer)
    assert sent.status == MessageStatus.DELIVERED and sent.from_number == number.phone_number
    assert page.locator(".qs-out .qs-who-sent").first.inner_text() == aaron.get_full_name()
    assert "Sent from Sales line" in page.locator(".qs-out .qs-foot").first.inner_text()
    wait_until(lambda: twilio_sandbox.received(customer), message="the sandbox phone got nothing")

    # The customer answers from the phone: the reply shows up on the open page.
    twilio_sandbox.inbound(customer, number.phone_number, "Yes, see you at 10! ¡Gracias!")
    page.locator(".qs-in .qs-body", has_text="Yes, see you at 10!").wait_for(timeout=30_000)
    assert "Replied to Sales line" in page.locator(".qs-in .qs-foot").first.inner_text()
    announced = page.locator(".qs-conv p.qs-visually-hidden[aria-live=polite]")
    assert announced.text_content() == "New text from Maria Lopez: Yes, see you at 10! ¡Gracias!"
    assert page.evaluate("window.notReloaded") is True

    # Every control of the composer is reachable with Tab from the message box.
    page.focus(".qs-text")
    reached = []
    for _ in range(4):
        page.keyboard.press("Tab")
        reached.append(
            page.evaluate(
                "document.activeElement.getAttribute('aria-label') || "
                "document.activeElement.textContent.trim() || document.activeElement.type"
            )
        )
    assert reached[:4] == ["Insert a template", "file", "checkbox", "Send"], reached

    violations = _serious_axe_violations(page)
    assert not violations, violations
    _screenshots(page, "record-widget")


@pytest.mark.browser
def test_stop_in_words_raises_a_banner_and_the_stop_keyword_turns_the_composer_off(
    page, twilio_sandbox, lead_line
):
    lead, number, base_url = lead_line["lead"], lead_line["number"], lead_line["server"].base_url
    customer = lead.mobile_phone_e164
    _log_in(page, base_url, "aaron")
    page.goto(base_url + lead.get_absolute_url())
    page.locator(".qs-composer").wait_for()
    page.evaluate("window.notReloaded = true")

    twilio_sandbox.inbound(customer, number.phone_number, "who is this? please stop texting me")
    banner = page.get_by_test_id("revocation-banner")
    banner.wait_for(timeout=30_000)
    assert "please stop texting me" in banner.inner_text()
    assert page.locator(".qs-text").is_enabled()  # a person decides: nothing was opted out yet

    twilio_sandbox.inbound(customer, number.phone_number, "STOP")
    refusal = page.get_by_test_id("composer-refusal")
    refusal.wait_for(timeout=30_000)
    assert "opted out" in refusal.inner_text() and "START" in refusal.inner_text()
    assert page.locator(".qs-text").is_disabled() and page.locator(".qs-send").is_disabled()
    assert page.locator(".qs-conv-head", has_text="Opted out").count() == 1
    assert not banner.is_visible()  # already opted out: nothing left to offer
    assert page.evaluate("window.notReloaded") is True
    assert ConsentState.objects.get(phone_number=customer).opted_out
    assert Lead.objects.filter(pk=lead.pk).exists()

    violations = _serious_axe_violations(page)
    assert not violations, violations
    _screenshots(page, "record-widget-opted-out")


@pytest.mark.browser
def test_composer_inserts_a_template_replaces_ucs2_characters_checks_files_and_keeps_the_enter_setting(
    page, lead_line, aaron
):
    from messaging.models import MemberMessagingSettings
    from templates_app.models import MessageTemplate

    lead, base_url = lead_line["lead"], lead_line["server"].base_url
    MessageTemplate.objects.create(
        organization=lead.organization,
        name="Viewing reminder",
        record_type="lead",
        body="Hi {{first_name}}, your viewing is at 10.",
    )
    _log_in(page, base_url, "aaron")
    page.goto(base_url + lead.get_absolute_url())
    box = page.locator(".qs-text")
    expect(box).to_be_enabled()  # the context has arrived

    # "/" opens the templates; Enter takes the first match, rendered for this lead by the server.
    box.focus()
    page.keyboard.type("/view")
    page.locator(".qs-template", has_text="Viewing reminder").wait_for()
    page.keyboard.press("Enter")
    expect(box).to_have_value("Hi Maria, your viewing is at 10.")
    assert not Message.objects.exists()

    # Characters that force UCS-2 are named, and one click swaps them for GSM-7 ones.
    box.fill("It’s ready — come by")
    page.get_by_role("button", name="Replace them").click()
    expect(box).to_have_value("It's ready - come by")
    page.get_by_test_id("segment-count").filter(has_text="GSM-7").wait_for()

    # A file over the limit is refused before any upload.
    page.set_input_files(
        ".qs-attach input[type=file]",
        files=[
            {"name": "brochure.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4\n" + b"0" * 600_000}
        ],
    )
    page.get_by_text("brochure.pdf is 600 KB; at most 500 KB for this kind of file.").wait_for()
    page.click(".qs-send")
    assert not Message.objects.exists()
    page.get_by_role("button", name="Remove brochure.pdf").click()

    # Enter as a new line, saved for this member.
    page.get_by_label("Enter sends").uncheck()
    wait_until(
        lambda: MemberMessagingSettings.objects.filter(membership__user=aaron, enter_sends=False).exists(),
        message="the composer setting was not saved",
    )
    box.focus()
    page.keyboard.press("End")
    page.keyboard.press("Enter")
    page.keyboard.type("See you")
    assert box.input_value() == "It's ready - come by\nSee you" and not Message.objects.exists()
    page.keyboard.press("Control+Enter")
    wait_until(lambda: Message.objects.filter(body="It's ready - come by\nSee you").exists())


@pytest.mark.browser
def test_a_long_history_loads_older_pages_on_scroll_with_days_sessions_media_and_rtl(
    page, asgi_server, org_a, aaron
):
    from datetime import timedelta

    from django.core.files.base import ContentFile
    from django.utils import timezone

    from messaging.inbox.conversations import get_or_create_conversation
    from messaging.models import MessageMedia, MessageSession
    from tests.factories_messaging import MessageFactory

    number = PhoneNumberFactory(account=TwilioAccountFactory(organization=org_a), label="Front desk")
    number.assigned_members.add(aaron.memberships.get(organization=org_a))
    lead = LeadFactory(organization=org_a, owner=aaron, first_name="Samir", last_name="Haddad")
    conversation, _ = get_or_create_conversation(number, lead.mobile_phone_e164)
    start = timezone.now() - timedelta(days=3)
    bodies = [f"Old text {n}" for n in range(44)] + ["مرحبا، هل الشقة متاحة؟"]
    for n, body in enumerate(bodies):
        message = MessageFactory(conversation=conversation, body=body)
        type(message).objects.filter(pk=message.pk).update(created_at=start + timedelta(hours=n * 1.5))
    second_session = start + timedelta(hours=30 * 1.5 - 0.1)
    MessageSession.objects.create(
        organization=org_a, conversation=conversation, started_at=start, ends_at=second_session
    )
    MessageSession.objects.create(
        organization=org_a,
        conversation=conversation,
        started_at=second_session,
        ends_at=second_session + timedelta(days=1),
    )
    with_file = MessageFactory(conversation=conversation, body="The signed lease", num_media=1)
    media = MessageMedia(
        organization=org_a, message=with_file, filename="lease.pdf", content_type="application/pdf", size=9
    )
    media.file.save("lease.pdf", ContentFile(b"%PDF-1.4\n"), save=False)
    media.save()

    _log_in(page, asgi_server.base_url, "aaron")
    page.goto(asgi_server.base_url + lead.get_absolute_url())
    page.locator(".qs-doc", has_text="lease.pdf").wait_for()
    # Waiting assertions: the thread may be drawn again once more right after it first appears.
    rtl = page.locator(".qs-body", has_text="مرحبا")
    expect(rtl).to_have_attribute("dir", "auto")
    expect(rtl).to_have_css("direction", "rtl")
    expect(page.locator(".qs-body", has_text="The signed lease")).to_have_css("direction", "ltr")
    expect(page.locator(".qs-in")).to_have_count(30)  # one page
    expect(page.get_by_text("Old text 0", exact=True)).to_have_count(0)
    expect(page.get_by_text("New session")).to_have_count(1)

    page.locator(".qs-scroll").evaluate("el => { el.scrollTop = 0; }")
    page.get_by_text("Old text 0", exact=True).wait_for()
    assert page.locator(".qs-in").count() == len(bodies) + 1
    assert page.locator(".qs-day").count() >= 3
    assert page.get_by_text("New session").count() == 1
    assert page.get_by_text("Scroll up for earlier texts").count() == 0
    download = page.locator(".qs-doc", has_text="lease.pdf")
    assert download.get_attribute("href") == f"/api/v1/media/{media.pk}"
