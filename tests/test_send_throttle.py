"""The per-sender allowance (``messaging.services.throttle``): at most the sender's rate in segments per
calendar second, in Redis (production mode, the clock to the microsecond, so a very fast sender is never
held back by rounding) or in the process (embedded mode)."""

from __future__ import annotations

import math
import time
from collections import Counter

import pytest

from messaging.services import throttle
from tests.plugins.servers import wait_until

NUMBER_ID = 987_651


@pytest.fixture
def fast(settings):
    settings.QUICKSEND_SEND_RATES = {"local": 1e6}
    throttle.reset(NUMBER_ID)
    yield
    throttle.reset(NUMBER_ID)


def test_a_sender_a_million_segments_a_second_is_never_held_back(fast):
    waits = [throttle.take(NUMBER_ID, "local", 1) for _ in range(300)]
    assert waits == [0] * 300


def test_a_sender_at_one_segment_a_second_waits_for_its_next_turn(settings):
    settings.QUICKSEND_SEND_RATES = {"local": 1}
    throttle.reset(NUMBER_ID)
    try:
        assert throttle.take(NUMBER_ID, "local", 1) == 0
        told = time.monotonic()
        wait = throttle.take(NUMBER_ID, "local", 1)
        assert 0 < wait <= 1.0 + throttle.MARGIN_SECONDS  # the next second (or the next but one)
        assert throttle.take(NUMBER_ID + 1, "local", 1) == 0  # another number has its own allowance
        wait_until(lambda: throttle.take(NUMBER_ID, "local", 1) == 0, timeout=2, interval=0.02)
        assert time.monotonic() - told >= wait - 0.05  # not before its turn
    finally:
        throttle.reset(NUMBER_ID)
        throttle.reset(NUMBER_ID + 1)


def test_a_batch_takes_from_each_senders_allowance_in_order_in_one_trip(settings):
    settings.QUICKSEND_SEND_RATES = {"local": 1}
    for n in (NUMBER_ID, NUMBER_ID + 1):
        throttle.reset(n)
    try:
        waits = throttle.take_many(
            [(NUMBER_ID, "local", 1), (NUMBER_ID + 1, "local", 1), (NUMBER_ID, "local", 1)]
        )
        assert waits[:2] == [0, 0]  # one text per sender goes now
        limit = 1.0 + throttle.MARGIN_SECONDS
        assert 0 < waits[2] <= limit  # the first sender's second text waits for its turn
        assert 0 < throttle.take(NUMBER_ID + 1, "local", 1) <= limit  # the batch took from that one too
    finally:
        for n in (NUMBER_ID, NUMBER_ID + 1):
            throttle.reset(n)


def test_a_sender_asked_without_pause_never_exceeds_its_rate_in_a_second_and_fills_every_second(settings):
    # Texts asking for one number at 20 segments/s as fast as they can, until two whole seconds have passed.
    settings.QUICKSEND_SEND_RATES = {"local": 20}
    throttle.reset(NUMBER_ID)
    try:
        granted: list[float] = []
        end = math.floor(time.time()) + 3

        def asked_until_the_end() -> bool:
            if throttle.take(NUMBER_ID, "local", 1) == 0:
                granted.append(time.time())
            return time.time() >= end

        wait_until(asked_until_the_end, timeout=5, interval=0)
        per_second = Counter(math.floor(t) for t in granted)
        # A text granted in a second's last part may reach the carrier in the next one: it counts there too.
        margin = Counter(math.floor(t) for t in granted if t - math.floor(t) >= throttle.ACTIVE + 0.02)
        counted = {second: n + margin[second - 1] for second, n in per_second.items()}
        assert max(counted.values()) <= 20
        full = [n for second, n in counted.items() if second not in (min(per_second), end)]
        assert full and all(n >= 19 for n in full)  # the whole seconds were used (a boundary may shift one)
    finally:
        throttle.reset(NUMBER_ID)


def _run(takes: list[tuple[float, int]], rate: float) -> list[float]:
    """The process's own allowance with a clock given: the wait of each ``(time, cost)`` take."""
    buckets = throttle._LocalBuckets()
    return [buckets.take(NUMBER_ID, rate, cost, now=at) for at, cost in takes]


def test_a_sender_whose_texts_run_late_catches_up_instead_of_losing_their_slots():
    # A 10/s sender: the second text is handed over 150 ms after its slot; the third, due 100 ms after the
    # second's slot, comes right after it and still goes (a one-segment bucket would have made it wait).
    assert _run([(100.0, 1), (100.25, 1), (100.26, 1)], rate=10) == [0, 0, 0]


def test_a_burst_goes_at_once_up_to_the_seconds_allowance_and_the_rest_take_turns_in_the_next():
    waits = _run([(100.2, 1)] * 12, rate=10)
    assert waits[:10] == [0] * 10
    # The 11th waits for second 101; the 12th for its turn a tenth of 101's active part later.
    assert waits[10:] == [pytest.approx(0.8), pytest.approx(0.8 + throttle.ACTIVE / 10)]


def test_texts_told_to_wait_at_the_same_moment_come_back_one_after_the_other():
    # A full second, then six more texts at once: they are given turns spread over the next second's active
    # part instead of one moment they would all come back at.
    waits = _run([(100.1, 1)] * 16, rate=10)
    assert waits[10:] == [pytest.approx(0.9 + i * throttle.ACTIVE / 10) for i in range(6)]


def test_no_calendar_second_holds_more_than_the_rate():
    takes = [(100.0 + i * 0.02, 1) for i in range(47)]
    waits = _run(takes, rate=10)
    assert sum(1 for w in waits if w == 0) == 10
    tenth = [i for i, w in enumerate(waits) if w == 0][-1]
    later = [at + w for (at, _), w in list(zip(takes, waits, strict=True))[tenth + 1 :]]
    # Once full, come back when the next second starts.
    assert later and all(t >= 101 - 1e-9 for t in later)


def test_a_text_handed_over_in_the_last_part_of_a_second_counts_in_that_second_and_the_next():
    margin = 100.0 + throttle.ACTIVE + 0.05
    # An idle sender's text goes at once, and second 101 then has room for nine.
    takes = [(margin, 1)] + [(101.0 + i * 0.01, 1) for i in range(10)]
    assert _run(takes, rate=10) == [0] * 10 + [pytest.approx(1.0 - 0.09)]
    # A sender whose second is full waits for the next one (second 100 full: its tenth text went at 100.5).
    takes = [(100.0 + i * 0.05, 1) for i in range(10)] + [(margin, 1)]
    assert _run(takes, rate=10)[10] == pytest.approx(101.0 - margin)
    # A second with room left, in the margin: it goes, charged to both seconds.
    takes = [(100.0 + i * 0.05, 1) for i in range(5)] + [(margin, 1)] + [(101.0, 1)] * 10
    waits = _run(takes, rate=10)
    assert waits[5] == 0 and waits[6:15] == [0] * 9 and waits[15] > 0


def test_a_message_larger_than_a_seconds_allowance_goes_alone_and_the_next_seconds_pay_for_it():
    # A 5-segment text from a long code (1 segment/s) goes when the number is idle; the next text waits
    # until the five seconds it cost have passed.
    waits = _run([(100.2, 5), (100.3, 1), (105.2, 1)], rate=1)
    assert waits[0] == 0
    assert waits[1] == pytest.approx(4.7)
    assert waits[2] == 0


def test_a_rate_under_one_segment_a_second_sends_one_every_few_seconds():
    waits = _run([(100.1, 1), (101.1, 1), (102.1, 1)], rate=0.5)
    assert waits == [0, pytest.approx(0.9), 0]


def test_the_virtual_clock_runs_only_in_each_seconds_active_part():
    assert throttle.virtual(100.0) == 100.0
    assert throttle.virtual(100.0 + throttle.ACTIVE / 2) == pytest.approx(100.5)
    assert throttle.virtual(100.99) == 101.0
    for v in (100.0, 100.25, 100.5, 100.99):
        assert throttle.virtual(throttle.real(v)) == pytest.approx(v)
