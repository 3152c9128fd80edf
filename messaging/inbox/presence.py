"""Who else has a conversation open, and who is typing in it ("Aaron is typing…", "Also viewing: Amy").

A page showing a conversation sends over its socket (``/ws/``), a few times a minute at most:

    {"action": "presence", "conversation": 7, "state": "viewing" | "typing" | "stopped" | "left"}

and the socket relays it to the conversation's other watchers as

    {"type": "presence", "conversation_id": 7, "user": {"id": 3, "name": "Aaron Agent"},
     "state": "typing", "expires_in": 6}

Only through a subscription: a socket relays for a conversation it is subscribed to, and it is subscribed only
while the inbox's visibility rules let its member see that conversation (the same rules as the API, checked on
subscribe and again while the socket lives, ``quicksend.consumers``; the consumer re-checks a stale socket
before relaying). Anything else is answered ``presence.denied``.

Nothing is stored, so a keystroke costs no database write: a state lasts ``expires_in`` seconds in the pages
that heard it unless it is sent again (a page repeats "viewing" every ``VIEWING_RENEW_SECONDS`` while it is
visible, "typing" while keys are pressed), so a closed laptop disappears on its own. A socket that closes says
"left" for the conversations it announced. A page that hears someone new answers with its own "viewing", so a
newcomer learns who is already there within one round trip.
"""

from __future__ import annotations

import time

from quicksend import realtime

VIEWING_SECONDS = 30
VIEWING_RENEW_SECONDS = 10
TYPING_SECONDS = 6
# "stopped": still viewing, no longer typing (the text was sent or the box emptied); "viewing" alone leaves
# a "typing" heard before to run out by itself.
STATES = {"viewing": VIEWING_SECONDS, "typing": TYPING_SECONDS, "stopped": VIEWING_SECONDS, "left": 0}
# A page sends "typing" every few seconds while typing; a socket that sends faster (per conversation and
# state) has the extra frames dropped, so a misbehaving client cannot flood a conversation's watchers.
MIN_INTERVAL_SECONDS = 1.0


def display_name(user) -> str:
    full = f"{user.first_name or ''} {user.last_name or ''}".strip()
    return full or user.get_username()


async def _relay(consumer, conversation_id: int, state: str) -> None:
    group = realtime.conversation_group(conversation_id)
    user = consumer.scope["user"]
    event = {
        "type": "presence",
        "conversation_id": conversation_id,
        "user": {"id": consumer.user_id, "name": display_name(user)},
        "state": state,
        "expires_in": STATES[state],
    }
    frame = {"type": "quicksend.event", "id": realtime.new_event_id(), "group": group, "event": event}
    await consumer.channel_layer.group_send(group, frame)


async def receive(consumer, content: dict) -> None:
    """``quicksend.consumers.ACTIONS["presence"]``: relay one state to the conversation's watchers."""
    conversation_id, state = content.get("conversation"), content.get("state")
    if state not in STATES or not isinstance(conversation_id, int) or isinstance(conversation_id, bool):
        await consumer.send_json({"type": "error", "error": "presence needs a conversation id and a state"})
        return
    if ("conv", conversation_id) not in consumer.subscriptions:
        await consumer.send_json({"type": "presence.denied", "conversation_id": conversation_id})
        return
    announced = consumer.__dict__.setdefault("presence_sent", {})
    now = time.monotonic()
    if state != "left" and now - announced.get((conversation_id, state), -MIN_INTERVAL_SECONDS) < (
        MIN_INTERVAL_SECONDS
    ):
        return
    if state == "left":
        for known in list(announced):
            if known[0] == conversation_id:
                del announced[known]
    else:
        announced[(conversation_id, state)] = now
    await _relay(consumer, conversation_id, state)


async def socket_closed(consumer) -> None:
    """``quicksend.consumers.DISCONNECT_HOOKS``: "left" for every conversation this socket announced in."""
    announced = consumer.__dict__.get("presence_sent") or {}
    for conversation_id in sorted({conv for conv, _state in announced}):
        if ("conv", conversation_id) in consumer.subscriptions:
            await _relay(consumer, conversation_id, "left")
    announced.clear()
