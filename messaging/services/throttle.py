"""Per-sender-number send throttle, in Redis (production) or in the process (embedded mode).

Twilio sends a number's segments at a fixed rate (FACTS.md "Throughput": long code 1, toll-free 3, short
code 100 segments per second) and queues the rest for up to 10 hours before refusing (21611/30001). The send
task takes ``cost = segments`` from the sender number's allowance before calling Twilio; when the allowance
is spent it gets the seconds to wait and retries the task later (it never sleeps in a worker).

Two rules, both kept for every message:

- **A token bucket** spaces the texts ``1/rate`` apart. It holds a fifth of a second of the rate
  (``TOLERANCE_SECONDS``, at least one segment), so a sender whose texts were handed over a little late
  (queued tasks run tens of milliseconds off their due time) catches up on its next texts instead of losing
  the slots for good, while a burst after a quiet moment stays small (a larger bucket sends more, but its
  bursts reach the carrier in the same second as the next texts: docs/benchmarks.md, "Campaigns").
- **No calendar second ever holds more than the rate**, whatever the bucket holds. A text handed over in the
  last ``GUARD_SECONDS`` of a second counts in the next one: it reaches the carrier then.

A message larger than a second's allowance goes alone into an empty second, and its excess is debt the next
seconds pay: a 5-segment message from a long code goes when the number is idle, and the number's next message
waits the 5 seconds it cost. Rates per number type can be changed with the ``QUICKSEND_SEND_RATES`` setting
(a dict like ``{"local": 1, "tollfree": 3, "shortcode": 100}``); one number's own rate (a 10DLC number
cleared for more) with ``set_number_rate``, which every worker reads from the same store as the allowance.
"""

from __future__ import annotations

import math
import threading
import time

from django.conf import settings

DEFAULT_RATES: dict[str, float] = {
    "local": 1.0,
    "mobile": 1.0,
    "unknown": 1.0,
    "tollfree": 3.0,
    "shortcode": 100.0,
}

# The end of each second whose hand-overs count in the next one (the time a hand-over takes to reach Twilio).
GUARD_SECONDS = 0.05
# How late a sender's texts may run and still catch up (the bucket's size, in seconds of the rate). Larger
# sends more of the rate but in bursts, which reach the carrier with the next second's texts.
TOLERANCE_SECONDS = 0.2


def rate_for(number_type: str) -> float:
    """Segments per second a number of this type may send."""
    rates = {**DEFAULT_RATES, **(getattr(settings, "QUICKSEND_SEND_RATES", None) or {})}
    return float(rates.get(number_type) or rates["local"])


def capacity_for(rate: float) -> float:
    """The bucket's size: ``TOLERANCE_SECONDS`` of the rate, at least one segment."""
    return max(1.0, rate * TOLERANCE_SECONDS)


def _decide(state: tuple[float, float, float, int, float], now: float, rate: float, cost: float):
    """The rule, for the process's own store (the Lua script below is the same rule in Redis). ``state``:
    the bucket's tokens and the time they were counted, the segments charged to a calendar second (debt
    included) and that second, and the time up to which the texts told to wait were given their turns.
    Returns the new state and the seconds to wait (0: granted)."""
    tokens, at, used, second, promised = state
    capacity = capacity_for(rate)
    tokens = min(capacity, tokens + max(0.0, now - at) * rate)
    current = math.floor(now + GUARD_SECONDS)  # the second the text reaches the carrier in
    if current > second:
        used = max(0.0, used - rate * (current - second))
    need = min(cost, capacity)
    wait = 0.0 if tokens >= need - 1e-9 else (need - tokens) / rate
    if used > 1e-9 and used + cost > rate + 1e-9:
        # The first second in which the debt left leaves room for this message (or is paid off).
        seconds = max(1, math.ceil((used - max(0.0, rate - cost)) / rate - 1e-9))
        wait = max(wait, current + seconds - GUARD_SECONDS - now)
    if wait <= 0:
        tokens, used = tokens - cost, used + cost
    else:
        # Texts told to wait come back one after the other, each ``cost / rate`` after the one before,
        # not all at once.
        wait = max(wait, promised - now)
        promised = now + wait + cost / rate
    return (tokens, now, used, current, promised), wait


# KEYS[1] = the allowance, KEYS[2] = the number's own rate (if set); ARGV = rate, cost, tolerance, guard.
# Returns 0 (granted) or the milliseconds to wait. The time comes from Redis itself, so every worker shares
# one clock. Times are stored with microseconds: tostring keeps 14 digits, which rounds a Unix time to
# 100 µs (a fast sender's next take could then see no time pass at all).
_LUA = """
local rate = tonumber(redis.call('GET', KEYS[2]) or ARGV[1])
local cost = tonumber(ARGV[2])
local capacity = math.max(1, rate * tonumber(ARGV[3]))
local guard = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local current = math.floor(now + guard)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at', 'used', 'second', 'promised')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
local used = tonumber(state[3]) or 0
local second = tonumber(state[4]) or current
local promised = tonumber(state[5]) or 0
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
if current > second then
  used = math.max(0, used - rate * (current - second))
end
local need = math.min(cost, capacity)
local wait = 0
if tokens < need - 1e-9 then
  wait = (need - tokens) / rate
end
if used > 1e-9 and used + cost > rate + 1e-9 then
  local seconds = math.max(1, math.ceil((used - math.max(0, rate - cost)) / rate - 1e-9))
  wait = math.max(wait, current + seconds - guard - now)
end
if wait <= 0 then
  tokens = tokens - cost
  used = used + cost
else
  wait = math.max(wait, promised - now)
  promised = now + wait + cost / rate
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.9f', tokens), 'at', string.format('%.6f', now),
  'used', string.format('%.9f', used), 'second', current, 'promised', string.format('%.6f', promised))
local idle = (capacity - tokens) / rate + used / rate + math.max(0, promised - now)
redis.call('EXPIRE', KEYS[1], math.ceil(idle) + 60)
if wait > 0 then
  return math.max(1, math.ceil(wait * 1000))
end
return 0
"""


_redis_lock = threading.Lock()
_redis_client = None
_script = None


def _redis():
    global _redis_client, _script
    with _redis_lock:
        if _redis_client is None:
            import redis

            _redis_client = redis.Redis.from_url(settings.CONFIG.redis_url)
            _script = _redis_client.register_script(_LUA)
    return _script


def _client():
    _redis()
    return _redis_client


def _key(number_id: int, kind: str = "send-throttle") -> str:
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "qs")
    return f"{prefix}:{kind}:{number_id}"


class _LocalBuckets:
    """The same allowance in process memory (embedded mode: one process)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state: dict[int, tuple[float, float, float, int, float]] = {}
        self.rates: dict[int, float] = {}

    def take(self, number_id: int, rate: float, cost: float, now: float | None = None) -> float:
        now = time.time() if now is None else now
        with self.lock:
            rate = self.rates.get(number_id, rate)
            fresh = (capacity_for(rate), now, 0.0, math.floor(now + GUARD_SECONDS), 0.0)
            self.state[number_id], wait = _decide(self.state.get(number_id, fresh), now, rate, cost)
            return wait


_local = _LocalBuckets()


def take(number_id: int, number_type: str, cost: int) -> float:
    """Take ``cost`` segments from the number's allowance. Returns 0 when the message may go now, else the
    seconds to wait before trying again (nothing was taken)."""
    rate = rate_for(number_type)
    cost = max(1, int(cost))
    if settings.CONFIG.redis_url:
        keys = [_key(number_id), _key(number_id, "send-rate")]
        waited_ms = int(_redis()(keys=keys, args=[rate, cost, TOLERANCE_SECONDS, GUARD_SECONDS]))
        return waited_ms / 1000.0
    return _local.take(number_id, rate, cost)


def take_many(items: list[tuple[int, str, int]]) -> list[float]:
    """``take`` for several messages at once, in order (``(number id, number type, cost)`` each): one trip
    to Redis for all of them. A number named twice takes twice, the second after the first."""
    if not settings.CONFIG.redis_url:
        return [take(*item) for item in items]
    script = _redis()
    pipe = _redis_client.pipeline(transaction=False)
    for number_id, number_type, cost in items:
        keys = [_key(number_id), _key(number_id, "send-rate")]
        script(
            keys=keys,
            args=[rate_for(number_type), max(1, int(cost)), TOLERANCE_SECONDS, GUARD_SECONDS],
            client=pipe,
        )
    return [int(waited_ms) / 1000.0 for waited_ms in pipe.execute()]


def reset(number_id: int) -> None:
    """Forget a number's allowance (tests, and after a number changes type)."""
    _local.state.pop(number_id, None)
    if settings.CONFIG.redis_url:
        _client().delete(_key(number_id))


def set_number_rate(number_id: int, segments_per_second: float | None) -> None:
    """Give one number its own rate (None: back to its type's). Kept without expiry beside the allowances."""
    if segments_per_second:
        _local.rates[number_id] = float(segments_per_second)
    else:
        _local.rates.pop(number_id, None)
    if settings.CONFIG.redis_url:
        client = _client()
        if segments_per_second:
            client.set(_key(number_id, "send-rate"), repr(float(segments_per_second)))
        else:
            client.delete(_key(number_id, "send-rate"))
