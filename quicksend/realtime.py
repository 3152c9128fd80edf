"""The one realtime publisher.

Services call ``publish(...)`` with explicit recipients; frames go out after the transaction commits, so a
client never hears of a row it cannot yet read. Groups: ``user.<id>`` (a user's own events) and
``conv.<id>`` (events of one conversation, joined only after a visibility check).

Delivery from synchronous code (Celery workers, views): with the Redis layer, every frame goes through one
long-lived event loop per process (a daemon thread, ``_publisher_loop``), so its Redis connections stay open
between frames. ``async_to_sync`` in a worker would start a new event loop per frame, and channels_redis opens
new connections for each loop: that was several milliseconds per group on the path from an inbound text to
the agent's screen (docs/benchmarks.md, "Live push"). The in-memory layer (embedded mode) lives on the
server's own loop, so it keeps ``async_to_sync``.

Batches: frames published inside ``collect()`` (a batch of stored texts or applied statuses, an inbox step)
go out together when it ends, in one hand-over to the publisher loop; the groups' members are read first
with one Redis pipeline, and a group nobody listens to is skipped (``deliver_many``).

Within a batch, a group's events go as one channel message (``quicksend.events``) that the socket unpacks
into the same frames, in order.

Delivery is best effort: a frame that cannot be delivered (Redis refusing, paused, the layer full) is logged
and counted (``delivery_failures()``), never raised into the code that published it, whose transaction has
committed by then. Clients refetch a REST snapshot when they reconnect, so a lost frame costs a refresh,
never data. After a failure, frames published within ``BREAKER_SECONDS`` are counted as failed without
trying, so a paused Redis cannot make every publisher wait ``PUBLISH_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable
from contextlib import contextmanager

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def conversation_group(conversation_id: int) -> str:
    return f"conv.{conversation_id}"


def new_event_id() -> str:
    return uuid.uuid4().hex


def publish(
    event_type: str,
    payload: dict,
    *,
    user_ids: Iterable[int] = (),
    conversation_ids: Iterable[int] = (),
    event_id: str | None = None,
) -> None:
    """Send a typed event to the given users and conversation groups once the current transaction commits.

    A socket joins its user's group and the groups of the conversations it watches, so one event may reach it
    through several groups: every copy carries the event's id and the socket forwards the first copy only.
    ``event_id`` names the event when it goes out in several calls (per-user payloads, or the thread's copy
    sent before the users' copies): the first copy to reach a socket is the one it shows. Without it each
    call is its own event."""
    groups = [user_group(u) for u in user_ids] + [conversation_group(c) for c in conversation_ids]
    if not groups:
        return
    frame = {
        "type": "quicksend.event",
        "id": event_id or new_event_id(),
        "event": {"type": event_type, **payload},
    }

    def send() -> None:
        batch = getattr(_collecting, "frames", None)
        if batch is not None:  # inside ``collect()``: sent with the others when it ends
            batch.append((event_type, groups, frame))
            return
        try:
            deliver(groups, frame)
        except Exception as exc:
            _failed(event_type, exc)

    transaction.on_commit(send)


_collecting = threading.local()


@contextmanager
def collect():
    """Frames published inside the block (their transactions committed inside it) go out together when it
    ends: one trip to the channel layer for a whole batch of events instead of one per frame, in the order
    they were published. A frame whose transaction rolled back was never collected. Nested blocks join the
    outermost one. Delivery stays best effort (failures are counted, never raised)."""
    if getattr(_collecting, "frames", None) is not None:
        yield
        return
    _collecting.frames = frames = []
    try:
        yield
    finally:
        _collecting.frames = None
        if frames:
            try:
                deliver_many([(groups, frame) for _, groups, frame in frames])
            except Exception as exc:
                _failed(frames[0][0] if len(frames) == 1 else f"{len(frames)} events", exc)


def publish_access_changed(*, user_ids: Iterable[int] = (), conversation_ids: Iterable[int] = ()) -> None:
    """Tell the open sockets of these users, and those watching these conversations, to check their access
    again now (``quicksend.consumers``), once the current transaction commits.

    Best effort: a socket that misses it checks again within ``ACCESS_RECHECK_SECONDS`` of its next event,
    so a channel-layer error is logged, never raised into the change that caused it (a logout, a
    deactivation)."""
    groups = [user_group(u) for u in user_ids] + [conversation_group(c) for c in conversation_ids]
    if not groups:
        return

    def send() -> None:
        try:
            deliver(groups, {"type": "quicksend.access"})
        except Exception:
            log.warning("access change not announced to %d socket groups", len(groups), exc_info=True)

    transaction.on_commit(send)


_failures = {"count": 0, "skipped": 0, "last_error": "", "last_at": None}
_broken_until = 0.0
_failures_lock = threading.Lock()


def _failed(event_type: str, exc: Exception) -> None:
    global _broken_until
    with _failures_lock:
        _failures["count"] += 1
        _failures["last_error"] = f"{event_type}: {exc.__class__.__name__}: {exc}"[:300]
        _failures["last_at"] = time.time()
        if isinstance(exc, LayerUnavailable):
            _failures["skipped"] += 1
            return
        _broken_until = time.monotonic() + BREAKER_SECONDS
    log.warning("live event %s not delivered (%s); clients refetch when they reconnect", event_type, exc)


def delivery_failures() -> dict:
    """Live events this process could not deliver since it started: ``count`` (of which ``skipped`` were
    not tried, the layer having just failed), ``last_error``, ``last_at`` (a Unix time)."""
    with _failures_lock:
        return dict(_failures)


class LayerUnavailable(Exception):
    """The channel layer failed a moment ago; this frame was not tried."""


def deliver(groups: list[str], frame: dict) -> None:
    """Send ``frame`` to ``groups`` now (in order), waiting until the layer has it. Each copy names the group
    it went to, so a socket can drop what reaches it from a conversation it has just left."""
    layer = get_channel_layer()
    if layer is None:
        return

    async def send_all() -> None:
        for group in groups:
            await layer.group_send(group, {**frame, "group": group})

    if isinstance(layer, InMemoryChannelLayer):
        async_to_sync(send_all)()
        return
    if time.monotonic() < _broken_until:
        raise LayerUnavailable("the channel layer failed less than a few seconds ago")
    future = asyncio.run_coroutine_threadsafe(send_all(), _publisher_loop())
    try:
        future.result(timeout=PUBLISH_TIMEOUT_SECONDS)
    except BaseException:
        future.cancel()
        raise


def deliver_many(items: list[tuple[list[str], dict]]) -> None:
    """``deliver`` for several frames at once, in order, in one trip to the publisher loop. With Redis, the
    groups' members are read first in one pipeline, and a group nobody listens to (a user with no open
    socket: most of them) is skipped instead of costing its round trips."""
    layer = get_channel_layer()
    if layer is None or not items:
        return
    if isinstance(layer, InMemoryChannelLayer):
        for groups, frame in items:
            deliver(groups, frame)
        return
    if time.monotonic() < _broken_until:
        raise LayerUnavailable("the channel layer failed less than a few seconds ago")

    async def send_all() -> None:
        listened = await _groups_with_members(layer, {g for groups, _ in items for g in groups})
        queues: dict[str, list[dict]] = {}
        for groups, frame in items:
            for group in groups:
                if group in listened:
                    queues.setdefault(group, []).append({**frame, "group": group})

        async def send_in_order(group: str) -> None:
            # A group's events of the batch travel as one message (``quicksend.events``, at most
            # ``FRAMES_PER_MESSAGE``), which its sockets unpack in order: one Redis trip per group and one
            # receive per socket instead of one per event.
            copies = queues[group]
            for start in range(0, len(copies), FRAMES_PER_MESSAGE):
                chunk = copies[start : start + FRAMES_PER_MESSAGE]
                if len(chunk) == 1 or any(copy.get("type") != "quicksend.event" for copy in chunk):
                    for copy in chunk:
                        await layer.group_send(group, copy)
                    continue
                await layer.group_send(
                    group,
                    {
                        "type": "quicksend.events",
                        "group": group,
                        "frames": [{"id": copy.get("id"), "event": copy["event"]} for copy in chunk],
                    },
                )

        # Each group's frames in order, the groups side by side (their Redis round trips overlap); users'
        # groups before conversations' groups, so a user's own copy of an event arrives before the thread's.
        for prefix in ("user.", "conv."):
            await asyncio.gather(*(send_in_order(g) for g in queues if g.startswith(prefix)))
        await asyncio.gather(*(send_in_order(g) for g in queues if not g.startswith(("user.", "conv."))))

    # The same patience per frame as ``deliver`` (a frame reaches about three groups), not one deadline for
    # a whole batch: a busy host must not turn a long batch into lost frames.
    sends = sum(len(groups) for groups, _ in items)
    future = asyncio.run_coroutine_threadsafe(send_all(), _publisher_loop())
    try:
        future.result(timeout=PUBLISH_TIMEOUT_SECONDS * max(1.0, sends / 3))
    except BaseException:
        future.cancel()
        raise


def listened(groups: set[str]) -> set[str]:
    """The ``groups`` some socket is in now (one Redis pipeline), so a publisher can skip building the
    events nobody would receive. Called after commit: a socket that joins later fetches the committed state
    when it joins. With another layer, or when the layer cannot answer, all of them (the events are built
    and ``deliver_many`` decides)."""
    layer = get_channel_layer()
    if layer is None or not groups:
        return set()
    if isinstance(layer, InMemoryChannelLayer) or time.monotonic() < _broken_until:
        return set(groups)
    future = asyncio.run_coroutine_threadsafe(_groups_with_members(layer, set(groups)), _publisher_loop())
    try:
        return future.result(timeout=PUBLISH_TIMEOUT_SECONDS)
    except Exception:
        future.cancel()
        log.warning("could not tell which of %d socket groups are listened to", len(groups), exc_info=True)
        return set(groups)


async def _groups_with_members(layer, groups: set[str]) -> set[str]:
    """The ``groups`` that have a channel in them (channels_redis keeps a sorted set per group), read
    with one pipeline per Redis connection. A layer of another kind: all of them."""
    if not all(hasattr(layer, name) for name in ("_group_key", "connection", "consistent_hash")):
        return groups
    by_index: dict[int, list[str]] = {}
    for group in groups:
        by_index.setdefault(layer.consistent_hash(group), []).append(group)
    listened: set[str] = set()
    for index, names in by_index.items():
        pipe = layer.connection(index).pipeline(transaction=False)
        for name in names:
            pipe.zcard(layer._group_key(name))
        for name, count in zip(names, await pipe.execute(), strict=True):
            if count:
                listened.add(name)
    return listened


PUBLISH_TIMEOUT_SECONDS = 2.0
BREAKER_SECONDS = 2.0
FRAMES_PER_MESSAGE = 50  # a batch's events to one group per channel message (bounds a message's size)
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None
_loop_lock = threading.Lock()


def _publisher_loop() -> asyncio.AbstractEventLoop:
    """This process's publisher loop, started on first use (again after a fork: threads do not survive it)."""
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid() or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="realtime-publisher", daemon=True).start()
            _loop, _loop_pid = loop, os.getpid()
        return _loop
