"""The per-sender token bucket (``messaging.services.throttle``): in production mode it lives in Redis and
keeps its clock to the microsecond, so a very fast sender is never held back by rounding."""

from __future__ import annotations

import pytest

from messaging.services import throttle

NUMBER_ID = 987_651


@pytest.fixture
def fast(settings):
    settings.QUICKSEND_SEND_RATES = {"local": 1e6}
    throttle.reset(NUMBER_ID)
    yield
    throttle.reset(NUMBER_ID)


def test_a_sender_a_million_segments_a_second_is_never_held_back(fast):
    # Takes a few tens of microseconds apart: with the bucket's time rounded to 100 µs, some saw no time pass.
    waits = [throttle.take(NUMBER_ID, "local", 1) for _ in range(300)]
    assert waits == [0] * 300


def test_a_sender_at_one_segment_a_second_waits_for_its_next_slot(settings):
    settings.QUICKSEND_SEND_RATES = {"local": 1}
    throttle.reset(NUMBER_ID)
    try:
        assert throttle.take(NUMBER_ID, "local", 1) == 0
        wait = throttle.take(NUMBER_ID, "local", 1)
        assert 0.9 < wait <= 1.0
        assert throttle.take(NUMBER_ID + 1, "local", 1) == 0  # another number has its own bucket
    finally:
        throttle.reset(NUMBER_ID)
        throttle.reset(NUMBER_ID + 1)


def test_a_batch_takes_from_each_senders_bucket_in_order_in_one_trip(settings):
    settings.QUICKSEND_SEND_RATES = {"local": 1}
    for n in (NUMBER_ID, NUMBER_ID + 1):
        throttle.reset(n)
    try:
        waits = throttle.take_many(
            [(NUMBER_ID, "local", 1), (NUMBER_ID + 1, "local", 1), (NUMBER_ID, "local", 1)]
        )
        assert waits[:2] == [0, 0]  # one text per sender goes now
        assert 0.9 < waits[2] <= 1.0  # the first sender's second text waits for its next slot
        assert 0.9 < throttle.take(NUMBER_ID + 1, "local", 1) <= 1.0  # the batch took from that bucket too
    finally:
        for n in (NUMBER_ID, NUMBER_ID + 1):
            throttle.reset(n)
