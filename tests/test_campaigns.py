"""Drip campaigns in one process: the sending window, the pacing of the dispatcher, one step per person
whatever happens, replies and opt-outs, the first message's opt-out line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from campaigns.drip import dispatcher, windows
from campaigns.drip.compose import brand_warning, compose, has_opt_out_language
from campaigns.drip.models import Campaign, CampaignRecipient, CampaignSend, SenderRate
from campaigns.drip.services import (
    do_cancel_campaign,
    do_pause_campaign,
    do_resume_campaign,
    do_start_campaign,
    note_reply,
)
from messaging.models import Message
from messaging.services import delivery
from messaging.services.consent import do_change_consent
from quicksend.errors import DomainError
from tests import factories_send
from tests.campaign_helpers import campaign, enroll, people

line = factories_send.line
fast_rates = factories_send.fast_rates

pytestmark = pytest.mark.django_db

# A Tuesday in daylight time, 9:00 in Los Angeles; later than any test run, so people started "now" are due.
NOON_NEW_YORK = datetime(2027, 6, 8, 16, 0, tzinfo=UTC)


@pytest.fixture
def released(monkeypatch):
    """What the dispatcher hands to workers (recipient, step, due time), instead of running it; the
    hand-overs to Twilio go to the real task."""
    from quicksend.queue import task
    from tests.conftest import clear_own_cache

    clear_own_cache()  # the senders' slot clocks
    calls = []

    class Recorder:
        def delay(self, items):
            calls.extend(items)

    monkeypatch.setattr(
        dispatcher,
        "task",
        lambda name: Recorder() if name == "campaigns.tasks.send_campaign_steps" else task(name),
    )
    return calls


def _delays(released, now):
    return [round(at - now.timestamp(), 3) for *_, at in released]


@pytest.fixture
def no_twilio(monkeypatch):
    monkeypatch.setattr("messaging.services.hand_over.queue_hand_over", lambda *a, **k: None)
    monkeypatch.setattr("messaging.tasks.sending.deliver_batch_task.delay", lambda *a, **k: None)


def _window(**values):
    base = {
        "window_clock": "recipient",
        "time_zone": "UTC",
        "window_start": "09:00",
        "window_end": "20:00",
        "days_of_week": list(range(7)),
        "quiet_hours": "federal",
    }
    return SimpleNamespace(**{**base, **values})


# --- the window --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "utc_hour", "allowed"),
    [
        ("America/New_York", 13, True),  # 9:00 there: opens
        ("America/New_York", 12, False),  # 8:00 there: quiet hours allow, the campaign does not yet
        ("America/Los_Angeles", 15, False),  # 8:00 there (daylight time)
        ("America/Los_Angeles", 16, True),  # 9:00 there
        ("Asia/Tokyo", 11, True),  # 20:00 there is the end: 19:59 was the last minute
    ],
)
def test_window_opens_at_nine_on_each_recipients_clock(zone, utc_hour, allowed):
    now = datetime(2026, 3, 10, utc_hour, 0, tzinfo=UTC)
    if zone == "Asia/Tokyo":
        now -= timedelta(minutes=1)
    gate = windows.gate(_window(), recipient_time_zone=zone, state="", now=now)
    assert gate.allowed is allowed
    if not allowed:
        assert gate.opens_at.astimezone(__import__("zoneinfo").ZoneInfo(zone)).hour == 9
        assert "9:00 their time" in gate.reason


def test_window_end_sets_a_validity_period_that_ends_with_it():
    now = datetime(2026, 3, 10, 23, 30, tzinfo=UTC)  # 19:30 in New York (EDT)
    gate = windows.gate(_window(), recipient_time_zone="America/New_York", state="", now=now)
    assert gate.allowed and windows.validity_seconds(gate.closes_at, now) == 30 * 60


def test_campaign_clock_and_days_of_week_still_bow_to_the_recipients_quiet_hours():
    # Campaign window 6:00–23:00 New York, weekdays only; a Los Angeles recipient at 6:30 New York time
    # (3:30 in LA) waits for 8:00 LA (federal quiet hours).
    campaign_window = _window(
        window_clock="campaign", time_zone="America/New_York", window_start="06:00", window_end="23:00",
        days_of_week=[0, 1, 2, 3, 4],
    )  # fmt: skip
    now = datetime(2026, 3, 10, 10, 30, tzinfo=UTC)
    gate = windows.gate(campaign_window, recipient_time_zone="America/Los_Angeles", state="", now=now)
    assert not gate.allowed and gate.opens_at == datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    saturday = datetime(2026, 3, 14, 15, 0, tzinfo=UTC)
    gate = windows.gate(campaign_window, recipient_time_zone="America/New_York", state="", now=saturday)
    # Monday 6:00 opens the campaign's window, but federal quiet hours hold it until 8:00.
    assert not gate.allowed and gate.opens_at == datetime(2026, 3, 16, 12, 0, tzinfo=UTC)
    assert gate.reason.startswith("Waiting for the sending window: Mon 8:00")


def test_strict_quiet_hours_follow_the_state():
    # Texas on a Sunday: 12:00–21:00.
    sunday_11_central = datetime(2026, 3, 15, 16, 0, tzinfo=UTC)
    gate = windows.gate(
        _window(quiet_hours="strict"),
        recipient_time_zone="America/Chicago",
        state="TX",
        now=sunday_11_central,
    )
    assert not gate.allowed and gate.opens_at == datetime(2026, 3, 15, 17, 0, tzinfo=UTC)


# --- the words ---------------------------------------------------------------------------------------------


def test_first_message_gets_the_opt_out_line_unless_it_has_one():
    assert compose("Hi {{first_name}}", merge={"First_Name": "Kim"}, first=True).text == (
        "Hi Kim Reply STOP to opt out."
    )
    assert (
        compose("Acme: deals! Text STOP to end", merge={}, first=True).text == "Acme: deals! Text STOP to end"
    )
    assert compose("Step two", merge={}, first=False).text == "Step two"
    assert has_opt_out_language("Reply STOP to unsubscribe")
    assert compose("Hi {{first_name}}", merge={}).missing == ("first_name",)


def test_a_first_message_without_the_brand_is_warned_about():
    assert brand_warning("Big sale today", "Acme")
    assert not brand_warning("Acme: big sale today", "acme")


# --- the dispatcher ----------------------------------------------------------------------------------------


def test_dispatcher_releases_one_long_code_text_per_second_spaced(org_a, alice, line, released, settings):
    settings.QUICKSEND_SEND_RATES = {}  # the real rates: a local number sends 1 segment a second
    drip = campaign(org_a, alice, [line.number])
    enroll(drip, people(10))
    do_start_campaign(drip, alice)
    dispatcher.dispatch(NOON_NEW_YORK)
    # Slots from half a second ahead (time to store the texts) to 2.5 s at 1 segment/s, each second's slots
    # in its first half: half a second ahead is 12:00:00.5, in the second half, so the first slot is at
    # 12:00:01, the next one second later.
    assert _delays(released, NOON_NEW_YORK) == [1.0, 2.0]
    released.clear()
    dispatcher.dispatch(NOON_NEW_YORK + timedelta(seconds=1))
    assert _delays(released, NOON_NEW_YORK + timedelta(seconds=1)) == [2.0]  # the slot clock carried over


def test_a_numbers_own_rate_and_segments_count(org_a, alice, line, released, settings):
    settings.QUICKSEND_SEND_RATES = {}
    SenderRate.objects.create(organization=org_a, number=line.number, segments_per_second=10)
    two_segments = "Acme " + "x" * 150
    drip = campaign(org_a, alice, [line.number], steps=[{"body": two_segments}])
    enroll(drip, people(50))
    do_start_campaign(drip, alice)
    dispatcher.dispatch(NOON_NEW_YORK)
    delays = _delays(released, NOON_NEW_YORK)
    assert len(delays) == 10  # 20 segments in 2 seconds
    # Five texts in the first half of each second, a tenth of a second apart (0.2 s of the slot clock).
    assert delays == [1.0, 1.1, 1.2, 1.3, 1.4, 2.0, 2.1, 2.2, 2.3, 2.4]


def test_campaigns_sharing_a_sender_take_turns(org_a, alice, line, released, settings):
    settings.QUICKSEND_SEND_RATES = {"local": 5}
    first = campaign(org_a, alice, [line.number], name="First")
    second = campaign(org_a, alice, [line.number], name="Second")
    enroll(first, people(30))
    enroll(second, people(30, start=100))
    do_start_campaign(first, alice)
    do_start_campaign(second, alice)
    dispatcher.dispatch(NOON_NEW_YORK)
    owners = [CampaignRecipient.objects.get(pk=r).campaign_id for r, *_ in released]
    assert owners.count(first.pk) == owners.count(second.pk) == 5
    assert owners[:4] == [first.pk, second.pk, first.pk, second.pk]


def test_batch_mode_sends_n_every_m_minutes(org_a, alice, line, released, settings):
    settings.QUICKSEND_SEND_RATES = {"local": 100}
    drip = campaign(org_a, alice, [line.number], batch_size=3, batch_minutes=10)
    enroll(drip, people(20))
    do_start_campaign(drip, alice)
    dispatcher.dispatch(NOON_NEW_YORK)
    dispatcher.dispatch(NOON_NEW_YORK + timedelta(minutes=5))
    assert len(released) == 3
    dispatcher.dispatch(NOON_NEW_YORK + timedelta(minutes=10))
    assert len(released) == 6


def test_people_outside_their_window_wait_with_the_reason(org_a, alice, line, released):
    drip = campaign(org_a, alice, [line.number], window_clock="recipient", window_start="09:00")
    enroll(drip, ["+12135550100"])  # Los Angeles: 7:00 there
    do_start_campaign(drip, alice)
    dispatcher.dispatch(NOON_NEW_YORK - timedelta(hours=2))
    assert released == []
    person = CampaignRecipient.objects.get(campaign=drip)
    assert person.next_at == NOON_NEW_YORK
    assert person.waiting_reason == "Waiting for the sending window: Tue 9:00 their time"


# --- one step, once ----------------------------------------------------------------------------------------


def _run(released, now):
    results = []
    while released:
        recipient_id, step, _ = released.pop(0)
        results.append(dispatcher.send_step(recipient_id, step, now=now))
    return results


def test_each_step_goes_once_even_when_its_task_runs_twice(org_a, alice, line, released, no_twilio):
    drip = campaign(
        org_a,
        alice,
        [line.number],
        steps=[{"body": "Acme: hi {{name}}"}, {"body": "Acme again", "wait_minutes": 60}],
    )
    (phone,) = people(1)
    enroll(drip, [phone], merge={"name": "Kim"})
    do_start_campaign(drip, alice)
    dispatcher.dispatch(NOON_NEW_YORK)
    person = CampaignRecipient.objects.get(campaign=drip)
    assert dispatcher.send_step(person.pk, 0, now=NOON_NEW_YORK) == "sent"
    assert dispatcher.send_step(person.pk, 0, now=NOON_NEW_YORK) == "done"
    person.refresh_from_db()
    assert person.step_index == 1 and person.status == "in_progress"
    assert person.next_at == NOON_NEW_YORK + timedelta(hours=1)
    message = Message.objects.get(organization=org_a)
    assert message.body == "Acme: hi Kim Reply STOP to opt out."
    assert message.source == "campaign" and message.source_label == "Spring sale"
    assert message.idempotency_key == f"campaign-{person.pk}-0"
    # Until the campaign's own window closes at 23:59 UTC (a minute before 20:00 in New York).
    assert message.validity_period == 7 * 3600 + 59 * 60
    # Twilio is given what is left of it when the text is handed over (ten minutes later: ten minutes less).
    message.created_at = timezone.now() - timedelta(minutes=10)
    left = delivery._create_params(message)["validity_period"]
    assert 7 * 3600 + 48 * 60 < left <= 7 * 3600 + 49 * 60
    released.clear()
    dispatcher.dispatch(NOON_NEW_YORK + timedelta(minutes=30))
    assert released == []  # not due yet
    dispatcher.dispatch(NOON_NEW_YORK + timedelta(hours=1))
    assert _run(released, NOON_NEW_YORK + timedelta(hours=1)) == ["sent"]
    person.refresh_from_db()
    assert person.status == "completed"
    assert CampaignSend.objects.filter(recipient=person).count() == 2
    dispatcher.dispatch(NOON_NEW_YORK + timedelta(hours=2))
    drip.refresh_from_db()
    assert drip.status == Campaign.Status.COMPLETED


def test_pause_holds_and_resume_goes_on(org_a, alice, line, released, no_twilio):
    drip = campaign(org_a, alice, [line.number])
    enroll(drip, people(3))
    do_start_campaign(drip, alice)
    dispatcher.dispatch(NOON_NEW_YORK)
    do_pause_campaign(drip, alice)
    assert set(_run(released, NOON_NEW_YORK)) == {"not running"}
    dispatcher.dispatch(NOON_NEW_YORK + timedelta(seconds=5))
    assert released == []
    do_resume_campaign(drip, alice)
    dispatcher.dispatch(NOON_NEW_YORK + timedelta(seconds=10))
    assert _run(released, NOON_NEW_YORK + timedelta(seconds=10)) == ["sent", "sent", "sent"]


def test_an_opt_out_stops_the_person_even_with_a_step_already_released(
    org_a, alice, line, released, no_twilio
):
    drip = campaign(org_a, alice, [line.number])
    (phone,) = people(1)
    enroll(drip, [phone])
    do_start_campaign(drip, alice)
    dispatcher.dispatch(NOON_NEW_YORK)
    from django.db import connection

    # The consent receiver runs after commit; here the send-time check alone must hold.
    with connection.cursor():
        do_change_consent(org_a, phone, "opt_out", "keyword", keyword="STOP")
    assert _run(released, NOON_NEW_YORK) == ["opted_out"]
    assert not Message.objects.filter(organization=org_a, direction="outbound").exists()


def test_a_reply_stops_the_person_when_the_campaign_says_so(org_a, alice, line, released, no_twilio):
    drip = campaign(org_a, alice, [line.number], steps=[{"body": "Acme 1"}, {"body": "Acme 2"}])
    keep = campaign(
        org_a, alice, [line.number], name="Keeps going", stop_on_reply=False,
        steps=[{"body": "Acme 1"}, {"body": "Acme 2"}],
    )  # fmt: skip
    (phone,) = people(1)
    for c in (drip, keep):
        enroll(c, [phone])
        do_start_campaign(c, alice)
    dispatcher.dispatch(NOON_NEW_YORK)
    _run(released, NOON_NEW_YORK)
    assert note_reply(org_a.pk, phone) == 1
    assert CampaignRecipient.objects.get(campaign=drip).status == "replied"
    assert CampaignRecipient.objects.get(campaign=keep).status == "in_progress"


def test_cancel_ends_everyone_still_waiting(org_a, alice, line):
    drip = campaign(org_a, alice, [line.number])
    enroll(drip, people(4))
    do_start_campaign(drip, alice)
    do_cancel_campaign(drip, alice)
    assert set(CampaignRecipient.objects.filter(campaign=drip).values_list("status", flat=True)) == {
        "canceled"
    }
    with pytest.raises(DomainError):
        do_resume_campaign(drip, alice)


def test_a_campaign_cannot_use_another_organizations_number(org_a, org_b, alice, line):
    from tests.factories_messaging import PhoneNumberFactory

    other = PhoneNumberFactory(account__organization=org_b)
    with pytest.raises(DomainError) as error:
        campaign(org_a, alice, [other])
    assert error.value.field == "senders"


def test_a_campaign_a_keyword_feeds_stays_open_when_everyone_in_it_has_finished(
    org_a, alice, line, released, no_twilio
):
    """People may still text the keyword: the campaign runs on with nobody active, and completes on the tick
    after the keyword opt-in is unlinked."""
    from campaigns.drip.models import KeywordOptIn

    drip = campaign(org_a, alice, [line.number], steps=[{"body": "Acme: welcome"}])
    (phone,) = people(1)
    enroll(drip, [phone])
    do_start_campaign(drip, alice)
    optin = KeywordOptIn.objects.create(
        organization=org_a,
        number=line.number,
        keyword="JOIN",
        campaign=drip,
        brand="Acme",
        frequency="4/month",
    )
    dispatcher.dispatch(NOON_NEW_YORK)
    assert _run(released, NOON_NEW_YORK) == ["sent"]
    dispatcher.dispatch(NOON_NEW_YORK + timedelta(minutes=1))
    drip.refresh_from_db()
    assert drip.status == Campaign.Status.RUNNING
    optin.campaign = None
    optin.save()
    dispatcher.dispatch(NOON_NEW_YORK + timedelta(minutes=2))
    drip.refresh_from_db()
    assert drip.status == Campaign.Status.COMPLETED


def test_a_batch_of_texts_stops_the_repliers_and_opts_in_a_keyword_once(
    org_a, alice, line, released, no_twilio
):
    """One task handles a batch of inbound texts: replies stop people with one UPDATE per organization, a
    keyword opt-in is confirmed and enrolled (not counted as a reply), and handling it again changes
    nothing."""
    from campaigns.drip import receivers
    from campaigns.drip.models import KeywordOptIn
    from tests.factories_messaging import store_inbound

    drip = campaign(org_a, alice, [line.number], steps=[{"body": "Acme 1"}, {"body": "Acme 2"}])
    replier, joiner = people(2)
    enroll(drip, [replier])
    do_start_campaign(drip, alice)
    dispatcher.dispatch(NOON_NEW_YORK)
    _run(released, NOON_NEW_YORK)
    KeywordOptIn.objects.create(
        organization=org_a, number=line.number, keyword="JOIN", campaign=drip, brand="Acme", frequency="4/mo"
    )
    texts = [
        store_inbound(line.number, replier, "Thanks, stop please"),
        store_inbound(line.number, joiner, "join"),
    ]
    for _ in range(2):
        receivers.on_inbound_texts([t.pk for t in texts])
    assert CampaignRecipient.objects.get(campaign=drip, phone=replier).status == "replied"
    assert CampaignRecipient.objects.get(campaign=drip, phone=joiner).status == "pending"
    confirmations = Message.objects.filter(organization=org_a, to_number=joiner, source="auto_reply")
    assert confirmations.count() == 1


def test_the_texts_of_a_tick_are_stored_together_at_a_cost_that_does_not_grow_with_them(
    org_a, alice, line, released, no_twilio, settings
):
    """``send_steps`` for 4 people and for 16 people runs the same statements on PostgreSQL: the records,
    the consent, the conversations, the messages, the sends and the people are each read or written once
    per batch."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.QUICKSEND_SEND_RATES = {"local": 100}
    counts = []
    for size, start in ((2, 200), (4, 0), (16, 100)):  # the first warms the per-process caches
        drip = campaign(org_a, alice, [line.number], name=f"Batch of {size}")
        enroll(drip, people(size, start=start), merge={"name": "Kim"})
        do_start_campaign(drip, alice)
        released.clear()
        dispatcher.dispatch(NOON_NEW_YORK)
        items = [
            item for item in released if CampaignRecipient.objects.get(pk=item[0]).campaign_id == drip.pk
        ]
        assert len(items) == size
        with CaptureQueriesContext(connection) as queries:
            done = dispatcher.send_steps(items, now=NOON_NEW_YORK)
        assert set(done.outcomes.values()) == {"sent"}
        assert len(done.deliveries) == size
        counts.append(len(queries))
        do_cancel_campaign(drip, alice)
    # PostgreSQL touches the conversations in one statement; the embedded database (SQLite) one each, and
    # nothing else grows.
    per_conversation = 0 if connection.vendor == "postgresql" else 1
    assert counts[2] - counts[1] == per_conversation * (16 - 4), counts
    assert CampaignSend.objects.count() == 22
    assert Message.objects.filter(organization=org_a, validity_period__isnull=False).count() == 22


def test_a_text_whose_hand_over_task_was_lost_is_queued_again_by_the_tick(
    org_a, alice, line, released, monkeypatch
):
    """Stored, the person moved on, but the hand-over task lost with its worker: a minute later the tick
    queues the hand-over again, even once the campaign has completed; a text still in its minute is left."""
    handed = []
    monkeypatch.setattr("messaging.tasks.sending.deliver_batch_task.delay", lambda ids: handed.extend(ids))
    drip = campaign(org_a, alice, [line.number], steps=[{"body": "Acme: hi"}])
    enroll(drip, people(2))
    do_start_campaign(drip, alice)
    dispatcher.dispatch(NOON_NEW_YORK)
    done = dispatcher.send_steps(released, now=NOON_NEW_YORK)  # its deliveries never queued
    lost, recent = sorted(pk for pk, _at in done.deliveries)
    Message.objects.filter(pk=lost).update(created_at=timezone.now() - timedelta(minutes=2))
    dispatcher.dispatch(NOON_NEW_YORK + timedelta(seconds=1))
    drip.refresh_from_db()
    assert drip.status == Campaign.Status.COMPLETED  # nobody is left to text
    from tests.conftest import clear_own_cache

    clear_own_cache()  # the sweep runs at most every 10 seconds
    handed.clear()
    dispatcher.dispatch(timezone.now())
    assert handed == [lost]
    assert recent not in handed


def test_people_wait_with_the_reason_while_their_sender_cannot_send(org_a, alice, line, released, no_twilio):
    """The sender's Twilio account needs an admin: nobody is failed for it; each person waits with the reason
    and is tried again a few minutes later."""
    drip = campaign(org_a, alice, [line.number])
    enroll(drip, people(2))
    do_start_campaign(drip, alice)
    dispatcher.dispatch(NOON_NEW_YORK)
    line.account.status = "invalid"
    line.account.save(update_fields=["status"])
    done = dispatcher.send_steps(released, now=NOON_NEW_YORK)
    assert set(done.outcomes.values()) == {"held"} and done.deliveries == []
    assert not Message.objects.filter(organization=org_a).exists()
    for person in CampaignRecipient.objects.filter(campaign=drip):
        assert person.status == "pending" and person.claimed_until is None
        assert person.next_at == NOON_NEW_YORK + timedelta(seconds=dispatcher.SENDER_HOLD_SECONDS)
        assert person.waiting_reason.startswith("Held: The Twilio account of")


def test_a_step_released_just_before_the_window_closed_waits_for_it_to_open_again(
    org_a, alice, line, released, no_twilio
):
    drip = campaign(org_a, alice, [line.number])
    enroll(drip, people(3))
    do_start_campaign(drip, alice)
    dispatcher.dispatch(NOON_NEW_YORK)
    night = NOON_NEW_YORK + timedelta(hours=12)  # the tasks ran late: the window has closed meanwhile
    done = dispatcher.send_steps(released, now=night)
    assert set(done.outcomes.values()) == {"waiting"} and done.deliveries == []
    assert not Message.objects.filter(organization=org_a).exists()
    for person in CampaignRecipient.objects.filter(campaign=drip):
        assert person.claimed_until is None and person.next_at > night
        assert person.waiting_reason.startswith("Waiting for the sending window")
