"""A test client for ``/ws/`` that hands out one event at a time.

The server sends the events of one batch to a group as a single WebSocket message, a JSON array
(``quicksend.consumers``, ``frontend/static/frontend/workspace/live.js``); this communicator unpacks it, so a
test reads the events in order whichever way they travelled."""

from __future__ import annotations

import json

from channels.testing.websocket import WebsocketCommunicator as ChannelsCommunicator


class WebsocketCommunicator(ChannelsCommunicator):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pending: list = []

    async def receive_json_from(self, timeout=1):
        if not self.pending:
            data = await super().receive_json_from(timeout=timeout)
            self.pending = data if isinstance(data, list) else [data]
        return self.pending.pop(0)

    async def receive_nothing(self, timeout=0.1, interval=0.01):
        return not self.pending and await super().receive_nothing(timeout=timeout, interval=interval)


def events_of(text: str) -> list[dict]:
    """The events in one WebSocket message's text (one event, or a batch's array)."""
    data = json.loads(text)
    return data if isinstance(data, list) else [data]
