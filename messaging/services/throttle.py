"""Per-sender-number send throttle: a token bucket in Redis (production) or in the process (embedded mode).

Twilio sends a number's segments at a fixed rate (FACTS.md "Throughput": long code 1, toll-free 3, short
code 100 segments per second) and queues the rest for up to 10 hours before refusing (21611/30001). The send
task takes ``cost = segments`` from the bucket of the sender number before calling Twilio; when the bucket
is short it gets the seconds to wait and retries the task later (it never sleeps in a worker).

The bucket holds at most one segment, so sends are spaced evenly and no second ever holds more than the
number's rate (a fuller bucket would let a burst after a quiet moment reach twice the rate). It may go into
debt: a 5-segment message from a long code goes when the bucket is full, and the next message of that number
waits the 5 seconds it cost. Rates per number type can be changed with the ``QUICKSEND_SEND_RATES`` setting
(a dict like ``{"local": 1, "tollfree": 3, "shortcode": 100}``); one number's own rate (a 10DLC number
cleared for more) with ``set_number_rate``, which every worker reads from the same store as the bucket.
"""

from __future__ import annotations

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


def rate_for(number_type: str) -> float:
    """Segments per second a number of this type may send."""
    rates = {**DEFAULT_RATES, **(getattr(settings, "QUICKSEND_SEND_RATES", None) or {})}
    return float(rates.get(number_type) or rates["local"])


# KEYS[1] = bucket, KEYS[2] = the number's own rate (if set); ARGV = rate, capacity, cost. Returns 0
# (granted) or the milliseconds to wait. The time comes from Redis itself, so every worker shares one clock.
_LUA = """
local rate = tonumber(redis.call('GET', KEYS[2]) or ARGV[1])
local capacity = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local need = math.min(cost, capacity)
-- Stored with microseconds: tostring keeps 14 digits, which rounds a Unix time to 100 µs (a fast sender's
-- next take could then see no time pass at all).
local stamp = string.format('%.6f', now)
if tokens >= need then
  tokens = tokens - cost
  redis.call('HSET', KEYS[1], 'tokens', string.format('%.9f', tokens), 'at', stamp)
  redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate + cost / rate) + 60)
  return 0
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.9f', tokens), 'at', stamp)
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate + cost / rate) + 60)
return math.ceil((need - tokens) / rate * 1000)
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
    """The same bucket in process memory (embedded mode: one process)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state: dict[int, tuple[float, float]] = {}
        self.rates: dict[int, float] = {}

    def take(self, number_id: int, rate: float, capacity: float, cost: float) -> float:
        now = time.monotonic()
        with self.lock:
            rate = self.rates.get(number_id, rate)
            tokens, at = self.state.get(number_id, (capacity, now))
            tokens = min(capacity, tokens + max(0.0, now - at) * rate)
            need = min(cost, capacity)
            if tokens >= need:
                self.state[number_id] = (tokens - cost, now)
                return 0.0
            self.state[number_id] = (tokens, now)
            return (need - tokens) / rate


_local = _LocalBuckets()


def take(number_id: int, number_type: str, cost: int) -> float:
    """Take ``cost`` segments from the number's bucket. Returns 0 when the message may go now, else the
    seconds to wait before trying again (nothing was taken)."""
    rate = rate_for(number_type)
    capacity = 1.0  # one segment: sends spaced evenly, never more than the rate in any second
    cost = max(1, int(cost))
    if settings.CONFIG.redis_url:
        keys = [_key(number_id), _key(number_id, "send-rate")]
        waited_ms = int(_redis()(keys=keys, args=[rate, capacity, cost]))
        return waited_ms / 1000.0
    return _local.take(number_id, rate, capacity, cost)


def take_many(items: list[tuple[int, str, int]]) -> list[float]:
    """``take`` for several messages at once, in order (``(number id, number type, cost)`` each): one trip
    to Redis for all of them. A number named twice takes twice, the second after the first."""
    if not settings.CONFIG.redis_url:
        return [take(*item) for item in items]
    script = _redis()
    pipe = _redis_client.pipeline(transaction=False)
    for number_id, number_type, cost in items:
        keys = [_key(number_id), _key(number_id, "send-rate")]
        script(keys=keys, args=[rate_for(number_type), 1.0, max(1, int(cost))], client=pipe)
    return [int(waited_ms) / 1000.0 for waited_ms in pipe.execute()]


def reset(number_id: int) -> None:
    """Forget a number's bucket (tests, and after a number changes type)."""
    _local.state.pop(number_id, None)
    if settings.CONFIG.redis_url:
        _client().delete(_key(number_id))


def set_number_rate(number_id: int, segments_per_second: float | None) -> None:
    """Give one number its own rate (None: back to its type's). Kept without expiry beside the buckets."""
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
