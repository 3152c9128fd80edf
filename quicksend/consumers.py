"""The WebSocket endpoint ``/ws/``: authenticated by the browser session, default-deny subscriptions, and
access that is checked again while the socket stays open.

A socket outlives the request that opened it: its user may log out, be deactivated, leave the organization or
lose sight of a conversation it watches. So the socket checks its access again (``_recheck``):

- at once when told to: ``realtime.publish_access_changed`` sends a ``quicksend.access`` frame to a user's
  sockets (logout, deactivation, membership or team change) or to a conversation's watchers (its owner or
  team changed, the organization's visibility rule changed);
- when an event arrives and its last check is older than ``ACCESS_RECHECK_SECONDS`` (spread by ±25 % per
  socket, so sockets that connected together do not all check on the same event), for anything that sends
  no such frame (a session that expired, a record's owner changed under the "records" rule). That check runs
  beside the delivery, not in front of it: a socket never waits on the database to get an event.

A session that ended (logged out, expired, password changed) closes the socket with 4401, a user or
membership no longer active with 4403; a conversation the user may no longer see is left
(``{"type": "subscription.revoked", "kind", "id"}``) and frames it sent before are dropped.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from importlib import import_module

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.utils.crypto import constant_time_compare

from quicksend import realtime

log = logging.getLogger(__name__)

# Subscription checkers by topic kind: ``{"kind": callable(user, org_id, object_id) -> bool}`` (sync callables
# run in a thread). Apps register theirs; an unknown kind is refused (default deny). They run again on every
# access check of a socket that holds such a subscription.
SUBSCRIPTION_CHECKS: dict = {}
# What else a socket's user must still satisfy: ``callable(user, org_id) -> bool`` (sync), e.g. an active
# membership of the session's organization. Apps register theirs.
CONNECTION_CHECKS: list = []
# Frames a client sends for others to see (typing, viewing): ``{"action": async fn(consumer, content)}``, and
# what to do when a socket closes (``async fn(consumer)``). Apps register theirs; a handler relays only
# through the subscriptions the checks above granted.
ACTIONS: dict = {}
DISCONNECT_HOOKS: list = []

# Copies of one event arrive back to back (one per group, sent in a row): a few hundred recent ids suffice.
DELIVERED_IDS_KEPT = 500
# How old a socket's last access check may be when an event is delivered (changes that announce themselves
# are applied at once; this bounds the others).
ACCESS_RECHECK_SECONDS = 10.0

SESSION_ENDED = 4401
ACCESS_ENDED = 4403
ORG_KEY = "org_id"  # the session's current organization (tenancy.middleware.SESSION_ORG_KEY)


def _next_check() -> float:
    return time.monotonic() + ACCESS_RECHECK_SECONDS * random.uniform(0.75, 1.25)  # noqa: S311 (spread only)


def _session_user(session_key: str | None, user_id: int):
    """The user still logged in under ``session_key`` as ``user_id``, active, with the session's
    organization id: ``(user, org_id)``, or None when the session ended. The same rules as
    ``django.contrib.auth.get_user``: the session names this user and carries their current auth hash."""
    if not session_key:
        return None
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    if str(session.get(SESSION_KEY)) != str(user_id) or not session.get(BACKEND_SESSION_KEY):
        return None
    user = get_user_model()._default_manager.filter(pk=user_id, is_active=True).first()
    if user is None:
        return None
    stored = session.get(HASH_SESSION_KEY) or ""
    if not constant_time_compare(stored, user.get_session_auth_hash()):
        return None
    return user, session.get(ORG_KEY)


def check_access(session_key: str | None, user_id: int, subscriptions: list[tuple[str, int]]):
    """One socket's access now: ``(close_code or None, org_id, [subscriptions it lost])``."""
    found = _session_user(session_key, user_id)
    if found is None:
        return SESSION_ENDED, None, subscriptions
    user, org_id = found
    if not all(check(user, org_id) for check in CONNECTION_CHECKS):
        return ACCESS_ENDED, org_id, subscriptions
    lost = []
    for kind, object_id in subscriptions:
        check = SUBSCRIPTION_CHECKS.get(kind)
        if check is None or not check(user, org_id, object_id):
            lost.append((kind, object_id))
    return None, org_id, lost


class EventsConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=SESSION_ENDED)
            return
        session = self.scope.get("session")
        self.user_id: int = user.id
        self.session_key: str | None = getattr(session, "session_key", None)
        # The same check as later on: a deactivated member reconnecting with a live session is refused too.
        code, self.org_id, _ = await database_sync_to_async(check_access)(self.session_key, user.id, [])
        if code is not None:
            await self.close(code=code)
            return
        self.groups_joined: set[str] = set()
        self.subscriptions: set[tuple[str, int]] = set()
        self.delivered: OrderedDict[str, None] = OrderedDict()
        self.next_check_at = _next_check()
        self.checking: asyncio.Task | None = None
        self.ended = False
        await self._join(realtime.user_group(user.id))
        await self.accept()
        await self.send_json({"type": "hello", "user_id": user.id})

    async def _join(self, group: str) -> None:
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined.add(group)

    async def _leave(self, group: str) -> None:
        self.groups_joined.discard(group)
        await self.channel_layer.group_discard(group, self.channel_name)

    async def disconnect(self, code):
        self.ended = True
        for hook in DISCONNECT_HOOKS if hasattr(self, "subscriptions") else ():
            await hook(self)
        for group in list(getattr(self, "groups_joined", ())):
            await self._leave(group)

    async def receive_json(self, content, **kwargs):
        if self.ended:
            return
        action = content.get("action")
        if action == "ping":
            await self.send_json({"type": "pong"})
        elif action == "subscribe":
            await self._subscribe(content.get("kind"), content.get("id"))
        elif action in ACTIONS:
            # What a client relays obeys the same access as what it receives: checked again when stale.
            if time.monotonic() >= self.next_check_at:
                await self._recheck()
            if not self.ended:
                await ACTIONS[action](self, content)
        else:
            await self.send_json({"type": "error", "error": f"unknown action {action!r}"})

    async def _subscribe(self, kind, object_id) -> None:
        check = SUBSCRIPTION_CHECKS.get(kind)
        allowed = False
        if check is not None and isinstance(object_id, int):
            # The session as it is now (another tab may have switched the organization since connecting).
            found = await database_sync_to_async(_session_user)(self.session_key, self.user_id)
            if found is not None:
                user, self.org_id = found
                allowed = await database_sync_to_async(check)(user, self.org_id, object_id)
        if not allowed:
            await self.send_json({"type": "subscribe.denied", "kind": kind, "id": object_id})
            return
        await self._join(f"{kind}.{object_id}")
        self.subscriptions.add((kind, object_id))
        await self.send_json({"type": "subscribed", "kind": kind, "id": object_id})

    def _access(self, subscriptions):
        """(close code or None, organization id, subscriptions lost) for this socket's identity (sync)."""
        return check_access(self.session_key, self.user_id, subscriptions)

    async def _recheck(self) -> None:
        """Check the socket's access again: close it, or leave the conversations it may no longer see."""
        self.next_check_at = _next_check()
        code, self.org_id, lost = await database_sync_to_async(self._access)(sorted(self.subscriptions))
        if self.ended:
            return
        if code is not None:
            await self.disconnect(code)
            await self.close(code=code)
            return
        for kind, object_id in lost:
            if (kind, object_id) in self.subscriptions:
                self.subscriptions.discard((kind, object_id))
                await self._leave(f"{kind}.{object_id}")
                await self.send_json({"type": "subscription.revoked", "kind": kind, "id": object_id})

    async def _recheck_beside(self) -> None:
        try:
            await self._recheck()
        except Exception:
            log.exception("access check of a socket of user %s failed", self.user_id)
        finally:
            self.checking = None

    async def quicksend_access(self, message):
        # Announced: checked before anything else this socket receives.
        if not self.ended:
            await self._recheck()

    async def quicksend_event(self, message):
        event = self._admit(message)
        if event is not None:
            await self.send_json(event)

    async def quicksend_events(self, message):
        # Several events of one batch to one group (``realtime.deliver_many``): each admitted as if it came
        # alone, those that pass sent in one WebSocket message (a JSON array, in order) when more than one.
        group = message.get("group")
        events = []
        for frame in message.get("frames", []):
            event = self._admit({"type": "quicksend.event", "group": group, **frame})
            if event is not None:
                events.append(event)
        if len(events) == 1:
            await self.send_json(events[0])
        elif events:
            await self.send_json(events)

    def _admit(self, message) -> dict | None:
        """The event of a ``quicksend.event`` message if this socket forwards it to its client, else None."""
        if self.ended:
            return None
        if self.checking is None and time.monotonic() >= self.next_check_at:
            self.checking = asyncio.get_running_loop().create_task(self._recheck_beside())
        group = message.get("group")
        if group is not None and group not in self.groups_joined:
            return None  # sent to a conversation this socket has left since
        # The same event reaches a socket once per group it shares with the event's recipients (its user's
        # and the conversation's): only the first copy goes to the client.
        event_id = message.get("id")
        if event_id is not None:
            if event_id in self.delivered:
                return None
            self.delivered[event_id] = None
            if len(self.delivered) > DELIVERED_IDS_KEPT:
                self.delivered.popitem(last=False)
        return message["event"]


# The embed socket ``/ws/embed/`` (docs/embed.md): its identity is an embed session (a key in the partitioned
# cookie, or offered as the subprotocol ``qs-embed-key.<key>`` by a page that holds it only in memory), never
# the browser's login. Apps register (sync callables):
# ``EMBED["session"](key) -> (user, org_id, scope) | None``: the live session of a key (tenancy);
# ``EMBED["subscribe"](user, org_id, conversation_id, scope) -> bool``: the ``conv`` kind (messaging);
# ``EMBED["event"](event, scope, subscribed_ids) -> bool``: whether an event sent to the member's own group
# concerns the session's record (messaging). Anything else is denied.
EMBED: dict = {}
EMBED_PROTOCOL = "qs-embed"
EMBED_KEY_PROTOCOL = "qs-embed-key."
EMBED_COOKIE = "__Host-qs_embed"


def embed_key_of(scope: dict) -> tuple[str | None, bool]:
    """``(key, offered_by_subprotocol)`` of a socket's handshake."""
    for protocol in scope.get("subprotocols") or ():
        if protocol.startswith(EMBED_KEY_PROTOCOL):
            return protocol[len(EMBED_KEY_PROTOCOL) :], True
    return (scope.get("cookies") or {}).get(EMBED_COOKIE), False


class EmbedEventsConsumer(EventsConsumer):
    """The live events of one embed session: its record's conversations only."""

    async def connect(self):
        key, by_protocol = embed_key_of(self.scope)
        resolve = EMBED.get("session")
        found = await database_sync_to_async(resolve)(key) if (key and resolve) else None
        if found is None:
            await self.close(code=SESSION_ENDED)
            return
        user, self.org_id, self.embed_scope = found
        self.embed_key = key
        self.user_id = user.id
        self.session_key = None
        self.groups_joined = set()
        self.subscriptions = set()
        self.delivered = OrderedDict()
        self.next_check_at = _next_check()
        self.checking = None
        self.ended = False
        await self._join(realtime.user_group(user.id))
        offered = EMBED_PROTOCOL in (self.scope.get("subprotocols") or ())
        await self.accept(subprotocol=EMBED_PROTOCOL if (by_protocol or offered) else None)
        await self.send_json({"type": "hello", "user_id": user.id})

    def _access(self, subscriptions):
        # The embed session's key, not the browser's login, is this socket's identity.
        found = EMBED["session"](self.embed_key)
        if found is None:
            return SESSION_ENDED, None, subscriptions
        user, org_id, self.embed_scope = found
        check = EMBED.get("subscribe")
        lost = [s for s in subscriptions if check is None or not check(user, org_id, s[1], self.embed_scope)]
        return None, org_id, lost

    async def _subscribe(self, kind, object_id) -> None:
        allowed = False
        if kind == "conv" and isinstance(object_id, int) and not isinstance(object_id, bool):
            code, _, lost = await database_sync_to_async(self._access)([(kind, object_id)])
            allowed = code is None and not lost
        if not allowed:
            await self.send_json({"type": "subscribe.denied", "kind": kind, "id": object_id})
            return
        await self._join(f"{kind}.{object_id}")
        self.subscriptions.add((kind, object_id))
        await self.send_json({"type": "subscribed", "kind": kind, "id": object_id})

    def _admit(self, message) -> dict | None:
        if self.ended:
            return None
        group = message.get("group")
        if group == realtime.user_group(self.user_id):
            allowed = EMBED.get("event")
            subscribed = {object_id for kind, object_id in self.subscriptions if kind == "conv"}
            if allowed is None or not allowed(message["event"], self.embed_scope, subscribed):
                return None  # the member's other texts are not this record's
        return super()._admit(message)
