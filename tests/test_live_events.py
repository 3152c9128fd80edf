"""Live events of the inbox over the WebSocket: a conversation's events reach only those the visibility rules
allow — never a user of another organization, never an agent the setting keeps out — both through Channels'
communicator and through the real ASGI server (uvicorn + Redis channel layer, production mode)."""

import asyncio
import contextlib
import json

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
from tests.live_socket import WebsocketCommunicator, events_of
from tests.markers import needs_shared_channel_layer
from tests.sessions import session_cookie_for

CUSTOMER = "+12025550147"


def _app():
    return SessionMiddlewareStack(
        AuthMiddlewareStack(URLRouter([path("ws/", consumers.EventsConsumer.as_asgi())]))
    )


async def connect(user, org):
    key = await database_sync_to_async(session_cookie_for)(user, org)
    ws = WebsocketCommunicator(_app(), "/ws/", headers=[(b"cookie", f"sessionid={key}".encode())])
    connected, _ = await ws.connect()
    assert connected
    assert (await ws.receive_json_from())["type"] == "hello"
    return ws


async def subscribe(ws, conversation_id) -> str:
    await ws.send_json_to({"action": "subscribe", "kind": "conv", "id": conversation_id})
    return (await ws.receive_json_from(timeout=5))["type"]


async def frames_until(ws, event_type, timeout=5) -> list[dict]:
    got = []
    while True:
        frame = await ws.receive_json_from(timeout=timeout)
        got.append(frame)
        if frame["type"] == event_type:
            return got


@pytest.fixture
def number(org_a):
    return PhoneNumberFactory(account=TwilioAccountFactory(organization=org_a))


@pytest.fixture
def amy(org_a):
    return MembershipFactory(organization=org_a, role=Role.AGENT, user__username="amy").user


@pytest.mark.django_db(transaction=True)
def test_a_visible_conversation_streams_its_events_and_others_hear_nothing(
    org_a, org_b, number, alice, aaron, amy, bob
):
    conversation = store_inbound(number, CUSTOMER, "first").conversation
    inbox.do_accept_conversation(conversation, amy)
    InboxSettings.objects.create(organization=org_a, agent_visibility="own")

    async def run():
        alice_ws = await connect(alice, org_a)
        aaron_ws = await connect(aaron, org_a)
        bob_ws = await connect(bob, org_b)
        # A session naming an organization he is not a member of: refused from the start.
        key = await database_sync_to_async(session_cookie_for)(bob, org_a)
        bob_in_a = WebsocketCommunicator(_app(), "/ws/", headers=[(b"cookie", f"sessionid={key}".encode())])
        assert await bob_in_a.connect() == (False, consumers.ACCESS_ENDED)
        assert await subscribe(alice_ws, conversation.pk) == "subscribed"
        assert await subscribe(aaron_ws, conversation.pk) == "subscribe.denied"  # not his (rule "own")
        assert await subscribe(bob_ws, conversation.pk) == "subscribe.denied"
        await database_sync_to_async(store_inbound)(number, CUSTOMER, "second")
        frames = await frames_until(alice_ws, "message.created")
        assert frames[-1]["message"]["body"] == "second"
        assert frames[-1]["conversation_id"] == conversation.pk
        updated = await frames_until(alice_ws, "conversation.updated")
        assert updated[-1]["conversation"]["last_message"]["preview"] == "second"
        for ws in (aaron_ws, bob_ws):
            assert await ws.receive_nothing(timeout=0.5)
        for ws in (alice_ws, aaron_ws, bob_ws):
            await ws.disconnect()

    asyncio.run(run())


@pytest.mark.django_db(transaction=True)
def test_a_first_text_reaches_each_member_as_a_notification_with_their_unread_total(
    org_a, number, alice, bob, org_b
):
    async def run():
        alice_ws = await connect(alice, org_a)
        bob_ws = await connect(bob, org_b)
        await database_sync_to_async(store_inbound)(number, CUSTOMER, "hello there")
        frames = await frames_until(alice_ws, "notification.created")
        note = frames[-1]
        assert note["notification"]["kind"] == "request"
        assert note["notification"]["preview"] == "hello there"
        assert note["unread_total"] == 1
        assert await bob_ws.receive_nothing(timeout=0.5)
        await alice_ws.disconnect()
        await bob_ws.disconnect()

    asyncio.run(run())


@needs_shared_channel_layer
@pytest.mark.production
@pytest.mark.django_db(transaction=True)
def test_through_the_real_server_only_allowed_sockets_get_a_conversations_events(
    org_a, org_b, number, alice, aaron, amy, bob, tmp_path
):
    import websockets.sync.client as ws_client

    from tests.plugins.servers import start_asgi_server

    conversation = store_inbound(number, CUSTOMER, "first").conversation
    inbox.do_accept_conversation(conversation, amy)
    InboxSettings.objects.create(organization=org_a, agent_visibility="own")
    server = start_asgi_server(tmp_path)
    url = server.base_url.replace("http://", "ws://") + "/ws/"

    sockets = contextlib.ExitStack()

    def open_socket(user, org):
        ws = sockets.enter_context(
            ws_client.connect(
                url,
                additional_headers={"Cookie": f"sessionid={session_cookie_for(user, org)}"},
                origin=server.base_url,
            )
        )
        assert json.loads(ws.recv(timeout=10))["type"] == "hello"
        ws.send(json.dumps({"action": "subscribe", "kind": "conv", "id": conversation.pk}))
        return ws, json.loads(ws.recv(timeout=10))["type"]

    try:
        alice_ws, alice_answer = open_socket(alice, org_a)
        aaron_ws, aaron_answer = open_socket(aaron, org_a)
        bob_ws, bob_answer = open_socket(bob, org_b)
        assert (alice_answer, aaron_answer, bob_answer) == (
            "subscribed",
            "subscribe.denied",
            "subscribe.denied",
        )
        store_inbound(number, CUSTOMER, "through uvicorn")
        seen = []
        while not any(f["type"] == "message.created" for f in seen):
            seen.extend(events_of(alice_ws.recv(timeout=10)))
        created = [f for f in seen if f["type"] == "message.created"]
        assert created[0]["message"]["body"] == "through uvicorn"
        for ws in (aaron_ws, bob_ws):
            with pytest.raises(TimeoutError):
                ws.recv(timeout=1)
    finally:
        sockets.close()
        server.stop()


async def all_frames(ws, quiet=0.5) -> list[dict]:
    """Every frame until the socket stays quiet for ``quiet`` seconds."""
    got = []
    while not await ws.receive_nothing(timeout=quiet):
        got.append(await ws.receive_json_from())
    return got


def counts(frames) -> dict[str, int]:
    found: dict[str, int] = {}
    for frame in frames:
        found[frame["type"]] = found.get(frame["type"], 0) + 1
    return found


@pytest.mark.django_db(transaction=True)
def test_a_socket_on_both_a_conversation_and_its_user_channel_gets_each_event_once(org_a, number, alice):
    from messaging.services.status import apply_status
    from tests.factories_messaging import store_outbound

    conversation = store_inbound(number, CUSTOMER, "first").conversation
    inbox.do_accept_conversation(conversation, alice)  # alice owns it: every event also goes to user.<alice>

    async def run():
        tab = await connect(alice, org_a)
        other_tab = await connect(alice, org_a)  # a second tab of the same user gets its own copy
        for ws in (tab, other_tab):
            assert await subscribe(ws, conversation.pk) == "subscribed"
        await database_sync_to_async(store_inbound)(number, CUSTOMER, "second")
        for ws in (tab, other_tab):
            frames = await all_frames(ws)
            once = {"message.created": 1, "conversation.updated": 1, "notification.created": 1}
            assert counts(frames) == once
            # The copy kept is the one addressed to her: it carries her own unread count (both texts).
            assert next(f for f in frames if f["type"] == "conversation.updated")["unread"] == 2
        reply = await database_sync_to_async(store_outbound)(conversation, alice, "third")
        await database_sync_to_async(apply_status)(reply.pk, None, "queued")
        for ws in (tab, other_tab):
            frames = await all_frames(ws)
            # Replying reads the thread: her notification clears.
            assert counts(frames) == {
                "message.created": 1,
                "conversation.updated": 1,
                "message.status": 1,
                "notification.cleared": 1,
            }
            await ws.disconnect()

    asyncio.run(run())


@pytest.mark.django_db(transaction=True)
def test_a_consent_change_reaches_those_looking_at_the_number_and_nobody_else(
    org_a, org_b, number, alice, bob
):
    from messaging.services.consent import do_change_consent

    conversation = store_inbound(number, CUSTOMER, "please stop texting me").conversation
    other = store_inbound(number, "+12025550148", "hello").conversation

    async def run():
        alice_ws = await connect(alice, org_a)
        watching_other = await connect(alice, org_a)
        bob_ws = await connect(bob, org_b)
        assert await subscribe(alice_ws, conversation.pk) == "subscribed"
        assert await subscribe(watching_other, other.pk) == "subscribed"
        await database_sync_to_async(do_change_consent)(org_a, CUSTOMER, "opt_out", "agent", actor=alice)
        frames = await frames_until(alice_ws, "consent.changed")
        assert {k: v for k, v in frames[-1].items() if k not in ("event_id", "id")} == {
            "type": "consent.changed",
            "phone_number": CUSTOMER,
            "opted_out": True,
            "blocked": False,
            "do_not_contact": False,
        }
        for ws in (watching_other, bob_ws):
            for frame in await all_frames(ws, quiet=0.3):
                assert frame["type"] != "consent.changed"
        for ws in (alice_ws, watching_other, bob_ws):
            await ws.disconnect()

    asyncio.run(run())
