"""Typing and viewing over the WebSocket: a member's "typing"/"viewing" reaches the other members watching the
conversation, never a member the visibility rules keep from it nor another organization, costs no database
write, is throttled, and a closing socket says "left". Real consumers through Channels' communicator (the
Redis channel layer in production mode)."""

import asyncio

import pytest
from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.sessions import SessionMiddlewareStack
from django.urls import path

from messaging.inbox import actions as inbox
from messaging.models import InboxSettings
from quicksend import consumers
from tenancy.models import Role
from tests.factories import MembershipFactory
from tests.factories_messaging import PhoneNumberFactory, TwilioAccountFactory, store_inbound
from tests.live_socket import WebsocketCommunicator
from tests.sessions import session_cookie_for

CUSTOMER = "+12025550172"


def _app():
    return SessionMiddlewareStack(
        AuthMiddlewareStack(URLRouter([path("ws/", consumers.EventsConsumer.as_asgi())]))
    )


@pytest.fixture
def number(org_a):
    return PhoneNumberFactory(account=TwilioAccountFactory(organization=org_a))


@pytest.fixture
def amy(org_a):
    return MembershipFactory(
        organization=org_a,
        role=Role.AGENT,
        user__username="amy",
        user__first_name="Amy",
        user__last_name="Agent",
    ).user


@pytest.fixture
def conversation(number, amy):
    conversation = store_inbound(number, CUSTOMER, "hello").conversation
    inbox.do_accept_conversation(conversation, amy)
    return conversation


async def _socket(user, org):
    key = await database_sync_to_async(session_cookie_for)(user, org)
    ws = WebsocketCommunicator(_app(), "/ws/", headers=[(b"cookie", f"sessionid={key}".encode())])
    connected, _ = await ws.connect()
    assert connected
    assert (await ws.receive_json_from())["type"] == "hello"
    return ws


async def _subscribe(ws, conversation_id) -> str:
    await ws.send_json_to({"action": "subscribe", "kind": "conv", "id": conversation_id})
    return (await ws.receive_json_from(timeout=5))["type"]


async def _frames(ws, quiet: float = 0.4) -> list[dict]:
    got = []
    while not await ws.receive_nothing(timeout=quiet):
        got.append(await ws.receive_json_from())
    return got


def _presence(frames):
    return [(f["user"]["name"], f["state"], f["expires_in"]) for f in frames if f["type"] == "presence"]


@pytest.mark.django_db(transaction=True)
def test_typing_reaches_the_other_watchers_with_the_name_and_an_expiry(org_a, conversation, amy, alice):
    async def run():
        amy_ws = await _socket(amy, org_a)
        alice_ws = await _socket(alice, org_a)
        assert await _subscribe(amy_ws, conversation.pk) == "subscribed"
        assert await _subscribe(alice_ws, conversation.pk) == "subscribed"
        await amy_ws.send_json_to({"action": "presence", "conversation": conversation.pk, "state": "typing"})
        frames = await _frames(alice_ws)
        assert _presence(frames) == [("Amy Agent", "typing", 6)]
        assert frames[0]["user"]["id"] == amy.pk and frames[0]["conversation_id"] == conversation.pk
        await amy_ws.send_json_to({"action": "presence", "conversation": conversation.pk, "state": "stopped"})
        assert _presence(await _frames(alice_ws)) == [("Amy Agent", "stopped", 30)]
        await amy_ws.send_json_to({"action": "presence", "conversation": conversation.pk, "state": "viewing"})
        assert _presence(await _frames(alice_ws)) == [("Amy Agent", "viewing", 30)]
        await amy_ws.disconnect()
        # A socket that closes says "left" for the conversation it announced in.
        assert _presence(await _frames(alice_ws)) == [("Amy Agent", "left", 0)]
        await alice_ws.disconnect()

    asyncio.run(run())


@pytest.mark.django_db(transaction=True)
def test_a_keystroke_touches_no_database(org_a, conversation, amy, alice, monkeypatch):
    """Relaying reads and writes nothing (the subscription was checked when it was made): every cursor of
    every thread is counted."""
    from django.db.backends import utils

    statements = []
    real_execute = utils.CursorWrapper.execute

    def counting(self, sql, params=None):
        statements.append(sql)
        return real_execute(self, sql, params)

    async def run():
        amy_ws = await _socket(amy, org_a)
        alice_ws = await _socket(alice, org_a)
        assert await _subscribe(amy_ws, conversation.pk) == "subscribed"
        assert await _subscribe(alice_ws, conversation.pk) == "subscribed"
        monkeypatch.setattr(utils.CursorWrapper, "execute", counting)
        await amy_ws.send_json_to({"action": "presence", "conversation": conversation.pk, "state": "typing"})
        assert _presence(await _frames(alice_ws)) == [("Amy Agent", "typing", 6)]
        monkeypatch.undo()
        assert statements == []
        await amy_ws.disconnect()
        await alice_ws.disconnect()

    asyncio.run(run())


@pytest.mark.django_db(transaction=True)
def test_frames_faster_than_the_throttle_are_dropped(org_a, conversation, amy, alice):
    async def run():
        amy_ws = await _socket(amy, org_a)
        alice_ws = await _socket(alice, org_a)
        assert await _subscribe(amy_ws, conversation.pk) == "subscribed"
        assert await _subscribe(alice_ws, conversation.pk) == "subscribed"
        for _ in range(5):
            await amy_ws.send_json_to(
                {"action": "presence", "conversation": conversation.pk, "state": "typing"}
            )
        assert _presence(await _frames(alice_ws)) == [("Amy Agent", "typing", 6)]
        await amy_ws.disconnect()
        await alice_ws.disconnect()

    asyncio.run(run())


@pytest.mark.django_db(transaction=True)
def test_a_member_who_may_not_see_the_conversation_neither_hears_nor_is_heard(
    org_a, org_b, conversation, amy, aaron, bob
):
    from messaging.inbox.visibility import inbox_settings_for

    settings = inbox_settings_for(org_a)
    settings.agent_visibility = InboxSettings.Visibility.OWN
    settings.save()

    async def run():
        amy_ws = await _socket(amy, org_a)
        aaron_ws = await _socket(aaron, org_a)  # an agent; the conversation is Amy's
        bob_ws = await _socket(bob, org_b)  # another organization
        assert await _subscribe(amy_ws, conversation.pk) == "subscribed"
        assert await _subscribe(aaron_ws, conversation.pk) == "subscribe.denied"
        assert await _subscribe(bob_ws, conversation.pk) == "subscribe.denied"
        for ws in (aaron_ws, bob_ws):
            await ws.send_json_to({"action": "presence", "conversation": conversation.pk, "state": "typing"})
            assert (await ws.receive_json_from(timeout=5)) == {
                "type": "presence.denied",
                "conversation_id": conversation.pk,
            }
        assert await amy_ws.receive_nothing(timeout=0.4)
        await amy_ws.send_json_to({"action": "presence", "conversation": conversation.pk, "state": "typing"})
        assert await aaron_ws.receive_nothing(timeout=0.4)
        assert await bob_ws.receive_nothing(timeout=0.1)
        for ws in (amy_ws, aaron_ws, bob_ws):
            await ws.disconnect()

    asyncio.run(run())


@pytest.mark.django_db(transaction=True)
def test_a_malformed_presence_frame_is_refused(org_a, conversation, amy):
    async def run():
        ws = await _socket(amy, org_a)
        assert await _subscribe(ws, conversation.pk) == "subscribed"
        for bad in (
            {"action": "presence", "conversation": conversation.pk, "state": "dancing"},
            {"action": "presence", "conversation": str(conversation.pk), "state": "typing"},
            {"action": "presence", "conversation": True, "state": "typing"},
        ):
            await ws.send_json_to(bad)
            assert (await ws.receive_json_from(timeout=5))["type"] == "error"
        await ws.disconnect()

    asyncio.run(run())
