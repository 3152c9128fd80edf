"""The WebSocket endpoint ``/ws/``: authenticated by the browser session, default-deny subscriptions."""

from __future__ import annotations

from collections import OrderedDict

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from quicksend import realtime

# Subscription checkers by topic kind: ``{"kind": callable(user, org_id, object_id) -> bool}`` (sync callables
# run in a thread). Apps register theirs; an unknown kind is refused (default deny).
SUBSCRIPTION_CHECKS: dict = {}

# Copies of one event arrive back to back (one per group, sent in a row): a few hundred recent ids suffice.
DELIVERED_IDS_KEPT = 500


class EventsConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.groups_joined: set[str] = set()
        self.delivered: OrderedDict[str, None] = OrderedDict()
        await self._join(realtime.user_group(user.id))
        await self.accept()
        await self.send_json({"type": "hello", "user_id": user.id})

    async def _join(self, group: str) -> None:
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined.add(group)

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", set()):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        action = content.get("action")
        if action == "ping":
            await self.send_json({"type": "pong"})
        elif action == "subscribe":
            await self._subscribe(content.get("kind"), content.get("id"))
        else:
            await self.send_json({"type": "error", "error": f"unknown action {action!r}"})

    async def _subscribe(self, kind, object_id) -> None:
        from asgiref.sync import sync_to_async

        check = SUBSCRIPTION_CHECKS.get(kind)
        allowed = False
        if check is not None and isinstance(object_id, int):
            session = self.scope.get("session")
            org_id = session.get("org_id") if session is not None else None
            allowed = await sync_to_async(check)(self.scope["user"], org_id, object_id)
        if not allowed:
            await self.send_json({"type": "subscribe.denied", "kind": kind, "id": object_id})
            return
        group = f"{kind}.{object_id}"
        await self._join(group)
        await self.send_json({"type": "subscribed", "kind": kind, "id": object_id})

    async def quicksend_event(self, message):
        # The same event reaches a socket once per group it shares with the event's recipients (its user's
        # and the conversation's): only the first copy goes to the client.
        event_id = message.get("id")
        if event_id is not None:
            if event_id in self.delivered:
                return
            self.delivered[event_id] = None
            if len(self.delivered) > DELIVERED_IDS_KEPT:
                self.delivered.popitem(last=False)
        await self.send_json(message["event"])
