"""Per-sender-number send throttle, in Redis (production) or in the process (embedded mode).

Twilio sends a number's segments at a fixed rate (FACTS.md "Throughput": long code 1, toll-free 3, short
code 100 segments per second) and queues the rest for up to 10 hours before refusing (21611/30001). The send
task takes ``cost = segments`` from the sender number's allowance before calling Twilio; when the allowance
is spent it gets the seconds to wait and retries the task later (it never sleeps in a worker).

Three rules, kept for every message:

- **No calendar second holds more than the rate.** The carrier (and the sandbox) count a sender's texts by
  the second they arrive in.
- **A text handed over in the last ``MARGIN_SECONDS`` of a second counts in that second and the next.** A
  text reaches the carrier tens of milliseconds after it is handed over (up to about 200 ms on a busy host),
  so one handed over at x.95 may be counted in second x + 1. A sender whose second is full waits for the
  next; an idle sender's text still goes at once.
- **Texts told to wait come back one after the other**, each given its own turn ``cost / rate`` apart in
  the first ``ACTIVE`` part of the seconds, not all at the start of the next second.

Turns are counted on a *virtual* clock, each second's active part stretched to the whole second
(``virtual``/``real``): a rate of 10 gives ten turns in the first 0.7 s of every second.

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

# The end of each second whose hand-overs may reach Twilio in the next one (longer than a hand-over takes).
MARGIN_SECONDS = 0.3
ACTIVE = 1.0 - MARGIN_SECONDS


def rate_for(number_type: str) -> float:
    """Segments per second a number of this type may send."""
    rates = {**DEFAULT_RATES, **(getattr(settings, "QUICKSEND_SEND_RATES", None) or {})}
    return float(rates.get(number_type) or rates["local"])


def virtual(t: float, active: float = ACTIVE) -> float:
    """``t`` on the clock that runs only in each second's first ``active`` part (and stands at the next
    second in the rest of it)."""
    second = math.floor(t)
    return second + min((t - second) / active, 1.0)


def real(v: float, active: float = ACTIVE) -> float:
    """The moment of virtual time ``v`` (the inverse of ``virtual`` within the seconds' active parts)."""
    second = math.floor(v)
    return second + (v - second) * active


def _decide(state: tuple[float, float, int, float], now: float, rate: float, cost: float):
    """The rule, for the process's own store (the Lua script below is the same rule in Redis). ``state``: the
    segments charged to a calendar second (the debt of a large message included), those charged to the
    next one by texts handed over in the margin, that second, and the virtual time up to which the texts
    told to wait were given their turns. Returns the new state and the seconds to wait (0: granted)."""
    used, ahead, second, promised = state
    current = math.floor(now)
    if current > second:
        used = max(max(0.0, used - rate * (current - second)), ahead if current == second + 1 else 0.0)
        ahead = 0.0
    margin = now - current >= ACTIVE
    if (used <= 1e-9 or used + cost <= rate + 1e-9) and not (margin and ahead + cost > rate + 1e-9):
        # In the margin the text may reach the carrier in this second or the next: it counts in both.
        return (used + cost, ahead + cost if margin else ahead, current, promised), 0.0
    # The first second in which the debt left leaves room for this message, at its turn.
    due = current + max(1, math.ceil((max(used, ahead) - max(0.0, rate - cost)) / rate - 1e-9))
    due = max(due, promised)
    return (used, ahead, current, due + cost / rate), real(due) - now


# KEYS[1] = the allowance, KEYS[2] = the number's own rate (if set); ARGV = rate, cost, active part.
# Returns 0 (granted) or the milliseconds to wait. The time comes from Redis itself, so every worker shares
# one clock. Times are stored with microseconds: tostring keeps 14 digits, which rounds a Unix time to
# 100 µs (a fast sender's next take could then see no time pass at all).
_LUA = """
local rate = tonumber(redis.call('GET', KEYS[2]) or ARGV[1])
local cost = tonumber(ARGV[2])
local active = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function real(v)
  local s = math.floor(v)
  return s + (v - s) * active
end
local current = math.floor(now)
local state = redis.call('HMGET', KEYS[1], 'used', 'ahead', 'second', 'promised')
local used = tonumber(state[1]) or 0
local ahead = tonumber(state[2]) or 0
local second = tonumber(state[3]) or current
local promised = tonumber(state[4]) or 0
if current > second then
  local carried = 0
  if current == second + 1 then
    carried = ahead
  end
  used = math.max(math.max(0, used - rate * (current - second)), carried)
  ahead = 0
end
local margin = now - current >= active
local wait = 0
if (used <= 1e-9 or used + cost <= rate + 1e-9) and not (margin and ahead + cost > rate + 1e-9) then
  used = used + cost
  if margin then
    ahead = ahead + cost
  end
else
  local debt = math.max(used, ahead) - math.max(0, rate - cost)
  local due = math.max(current + math.max(1, math.ceil(debt / rate - 1e-9)), promised)
  promised = due + cost / rate
  wait = real(due) - now
end
redis.call('HSET', KEYS[1], 'used', string.format('%.9f', used), 'ahead', string.format('%.9f', ahead),
  'second', current, 'promised', string.format('%.6f', promised))
redis.call('EXPIRE', KEYS[1], math.ceil((used + ahead) / rate + math.max(0, promised - now)) + 60)
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
        self.state: dict[int, tuple[float, float, int, float]] = {}
        self.rates: dict[int, float] = {}

    def take(self, number_id: int, rate: float, cost: float, now: float | None = None) -> float:
        now = time.time() if now is None else now
        with self.lock:
            rate = self.rates.get(number_id, rate)
            fresh = (0.0, 0.0, math.floor(now), 0.0)
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
        waited_ms = int(_redis()(keys=keys, args=[rate, cost, ACTIVE]))
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
            args=[rate_for(number_type), max(1, int(cost)), ACTIVE],
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
