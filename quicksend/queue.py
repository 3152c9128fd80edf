"""Queue a Celery task by its name.

A service that starts work in a worker queues it by name, so the service module and the task module that
calls it back do not import each other (no import cycles inside an app). The name is the task's dotted path
(``@shared_task`` without ``name=``); the module is imported here, under Python's import lock, so a web
process queues correctly from its first requests on, whatever its threads do at the same time. The task
object is the registered one: ``task_always_eager`` (embedded mode) and tests that replace a task's ``delay``
behave as with a direct call.

Batch tasks take a list of items (``task(items)``). ``enqueue_item(name, item)`` queues ``task([item])``, or,
inside a ``coalesce()`` block (a batch of inbound texts announcing itself), gathers the items and queues one
``task(items)`` per task when the block ends: one Celery message per batch instead of one per text.

Drains (a task with no arguments that finds its own work, rows waiting in a table): ``wake_drain(name, flag)``
queues one unless one is queued already that has not started (a Redis ``SET NX`` flag, which the drain clears
with ``drain_started(flag)`` before it first looks for work), so a burst of writers from many processes costs
one Celery message, not one each.

Drains fed by a list (``push_and_wake``): the writer appends its item to a Redis list and sets the flag in
one round trip; the drain holds the flag while it empties the list, then lets it go and looks once more
(``drain_idle``), so an item pushed while the drain ran is never left without a drain. Where the cache is
not Redis (one process: the embedded mode, tests) the lists live in the process.
"""

from __future__ import annotations

import importlib
import os
import threading
import time
from contextlib import contextmanager

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache


def task(task_name: str):
    """The task whose dotted path is ``task_name``."""
    module, _, name = task_name.rpartition(".")
    return getattr(importlib.import_module(module), name)


def enqueue(task_name: str, *args, **kwargs):
    """``delay`` the task whose dotted path is ``task_name``."""
    return task(task_name).delay(*args, **kwargs)


_coalescing = threading.local()


@contextmanager
def coalesce():
    """Gather the ``enqueue_item`` calls made inside the block; queue one task per batch task at its end (in
    the order the tasks were first named). Nested blocks join the outermost one."""
    if getattr(_coalescing, "items", None) is not None:
        yield
        return
    _coalescing.items = items = {}
    try:
        yield
    finally:
        _coalescing.items = None
        for task_name, values in items.items():
            enqueue(task_name, values)


def enqueue_item(task_name: str, item) -> None:
    """Queue the batch task ``task_name`` with ``[item]`` now, or add ``item`` to the surrounding
    ``coalesce()`` block's single call."""
    items = getattr(_coalescing, "items", None)
    if items is None:
        enqueue(task_name, [item])
        return
    items.setdefault(task_name, []).append(item)


# A drain's flag outlives a task that was queued and lost by at most this long.
FLAG_SECONDS = 60
# Setting or clearing a flag must never hold up a request: its Redis calls give up after this long.
FLAG_TIMEOUT_SECONDS = 0.25
# A drain's own calls (taking its items, looking again) run in a worker: a slow moment must not kill it.
DRAIN_TIMEOUT_SECONDS = 5.0
_clients: dict[tuple[int, float], object] = {}


def _flag_client(timeout: float = FLAG_TIMEOUT_SECONDS):
    """This process's Redis client for drain flags and lists, with short timeouts (``timeout``). (The Django
    cache builds a client object per call.)"""
    key = (os.getpid(), timeout)  # a forked worker needs its own connections
    client = _clients.get(key)
    if client is None:
        import redis

        client = _clients[key] = redis.Redis.from_url(
            settings.CACHES["default"]["LOCATION"], socket_timeout=timeout, socket_connect_timeout=timeout
        )
    return client


def _flag_add(flag: str) -> bool:
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return backend.add(flag, 1, timeout=FLAG_SECONDS)
    return bool(_flag_client().set(backend.make_and_validate_key(flag), 1, nx=True, ex=FLAG_SECONDS))


def drain_started(flag: str) -> None:
    """Called by a drain before it first looks for work: work stored from now on queues another drain."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        backend.delete(flag)
        return
    _flag_client().delete(backend.make_and_validate_key(flag))


_last_starts: dict[str, float] = {}
_pace_lock = threading.Lock()


def pace(name: str, seconds: float) -> None:
    """Called by a drain before ``drain_started``: when this process started a drain ``name`` less than
    ``seconds`` ago, wait until ``seconds`` after it. A lone drain starts at once; under a steady stream of
    work, where every item would otherwise wake a drain of one or two items, the drains of a process start
    at most every ``seconds`` and each takes what gathered meanwhile (while it waits its flag is still set,
    so the writers queue no other). Two drains waiting at once take consecutive turns."""
    with _pace_lock:
        now = time.monotonic()
        start = max(now, _last_starts.get(name, now - seconds) + seconds)
        _last_starts[name] = start
    if start > now:
        time.sleep(start - now)


def wake_drain(task_name: str, flag: str) -> bool:
    """Make sure the drain task ``task_name`` runs after this point; True when this call queued it.

    When ``flag`` is set, a drain is queued that has not looked for work yet and will see what the caller
    stored; when it is not, this call sets it and queues one. A lost task leaves the flag set until it
    expires (``FLAG_SECONDS``): the caller's work must be durable on its own (a periodic retry). With tasks
    run eagerly (embedded mode) the drain runs here, now. Raises when Redis or the broker fails."""
    drain = task(task_name)
    if getattr(drain.app.conf, "task_always_eager", False):
        drain.delay()
        return True
    if not _flag_add(flag):
        return False
    _queue_drain(drain, flag)
    return True


def _queue_drain(drain, flag: str) -> None:
    try:
        drain.delay()
    except Exception:
        try:
            drain_started(flag)  # nothing was queued: the next writer must try again
        except Exception:  # noqa: S110 - the flag expires by itself (FLAG_SECONDS)
            pass
        raise


_local_lists: dict[str, list] = {}
_local_lists_lock = threading.Lock()


def _redis_key(key: str) -> str | None:
    """The Redis key of ``key``, or None where the cache is not Redis (the lists live in the process)."""
    backend = caches["default"]
    return backend.make_and_validate_key(key) if isinstance(backend, RedisCache) else None


def push_and_wake(task_name: str, flag: str, key: str, items: list) -> bool:
    """Append ``items`` to the list ``key`` and make sure the drain ``task_name`` runs after this point (as
    ``wake_drain``; the push and the flag in one Redis round trip). True when this call queued the drain.
    Raises when Redis or the broker fails: the items may or may not be in the list (the caller's work must
    be durable on its own, a periodic sweep)."""
    drain = task(task_name)
    redis_key = _redis_key(key)
    if redis_key is None:
        with _local_lists_lock:
            _local_lists.setdefault(key, []).extend(items)
        return wake_drain(task_name, flag)
    pipe = _flag_client().pipeline(transaction=False)
    pipe.rpush(redis_key, *items)
    pipe.set(_redis_key(flag), 1, nx=True, ex=FLAG_SECONDS)
    _length, added = pipe.execute()
    if getattr(drain.app.conf, "task_always_eager", False):
        drain.delay()
        return True
    if not added:
        return False
    _queue_drain(drain, flag)
    return True


def pop_items(key: str, count: int) -> list[str]:
    """Take up to ``count`` items from the front of the list ``key`` (as strings; none: an empty list)."""
    redis_key = _redis_key(key)
    if redis_key is None:
        with _local_lists_lock:
            items = _local_lists.get(key, [])
            taken, _local_lists[key] = items[:count], items[count:]
        return [str(item) for item in taken]
    return [item.decode() for item in _flag_client(DRAIN_TIMEOUT_SECONDS).lpop(redis_key, count) or []]


def list_items(key: str) -> list[str]:
    """Every item in the list ``key`` now (as strings)."""
    redis_key = _redis_key(key)
    if redis_key is None:
        with _local_lists_lock:
            return [str(item) for item in _local_lists.get(key, [])]
    return [item.decode() for item in _flag_client(DRAIN_TIMEOUT_SECONDS).lrange(redis_key, 0, -1)]


def hold_flag(flag: str) -> None:
    """A drain that holds ``flag`` and hands on to a successor: the flag lasts another ``FLAG_SECONDS``."""
    redis_key = _redis_key(flag)
    if redis_key is None:
        caches["default"].set(flag, 1, timeout=FLAG_SECONDS)
        return
    _flag_client(DRAIN_TIMEOUT_SECONDS).set(redis_key, 1, ex=FLAG_SECONDS)


def drain_idle(flag: str, key: str) -> bool:
    """Called by a drain that holds ``flag`` and found the list ``key`` empty: let the flag go, then look
    again. True when items came in meanwhile and no writer has queued another drain for them (this drain took
    the flag back and goes on); False when it may stop."""
    drain_started(flag)
    redis_key = _redis_key(key)
    if redis_key is None:
        with _local_lists_lock:
            waiting = bool(_local_lists.get(key))
    else:
        waiting = bool(_flag_client(DRAIN_TIMEOUT_SECONDS).llen(redis_key))
    return waiting and _flag_add(flag)
