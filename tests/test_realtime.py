"""The WebSocket endpoint: session-authenticated, per-user groups, default-deny subscriptions, and events
sent only after the transaction commits."""

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.sessions import SessionMiddlewareStack
from django.db import transaction
from django.urls import path

from quicksend import consumers, realtime
from tests.live_socket import WebsocketCommunicator
from tests.markers import needs_shared_channel_layer
from tests.plugins.servers import wait_until
from tests.sessions import session_cookie_for


def _app():
    from channels.auth import AuthMiddlewareStack

    return SessionMiddlewareStack(
        AuthMiddlewareStack(URLRouter([path("ws/", consumers.EventsConsumer.as_asgi())]))
    )


async def _connect(user=None):
    headers = []
    if user is not None:
        key = await database_sync_to_async(session_cookie_for)(user)
        headers.append((b"cookie", f"sessionid={key}".encode()))
    communicator = WebsocketCommunicator(_app(), "/ws/", headers=headers)
    connected, code = await communicator.connect()
    return communicator, connected, code


@pytest.mark.django_db(transaction=True)
def test_anonymous_socket_is_refused():
    async def run():
        communicator, connected, code = await _connect()
        assert not connected
        assert code == 4401

    asyncio.run(run())


@pytest.mark.django_db(transaction=True)
def test_user_receives_events_addressed_to_them_only(alice, aaron):
    async def run():
        alice_ws, ok1, _ = await _connect(alice)
        aaron_ws, ok2, _ = await _connect(aaron)
        assert ok1 and ok2
        assert (await alice_ws.receive_json_from())["type"] == "hello"
        assert (await aaron_ws.receive_json_from())["type"] == "hello"
        await database_sync_to_async(_publish_in_transaction)(alice.pk)
        event = await alice_ws.receive_json_from(timeout=5)
        assert event == {"type": "notification.created", "text": "hi"}
        assert await aaron_ws.receive_nothing(timeout=0.3)
        await alice_ws.disconnect()
        await aaron_ws.disconnect()

    asyncio.run(run())


def _publish_in_transaction(user_id):
    with transaction.atomic():
        realtime.publish("notification.created", {"text": "hi"}, user_ids=[user_id])


@pytest.mark.django_db(transaction=True)
def test_event_is_not_sent_when_the_transaction_rolls_back(alice):
    def publish_then_fail():
        try:
            with transaction.atomic():
                realtime.publish("notification.created", {"text": "never"}, user_ids=[alice.pk])
                raise RuntimeError("boom")
        except RuntimeError:
            pass

    async def run():
        ws, ok, _ = await _connect(alice)
        assert ok
        await ws.receive_json_from()
        await database_sync_to_async(publish_then_fail)()
        assert await ws.receive_nothing(timeout=0.3)
        await ws.disconnect()

    asyncio.run(run())


@pytest.mark.django_db(transaction=True)
def test_subscriptions_are_denied_unless_a_check_allows_them(alice, monkeypatch):
    monkeypatch.setitem(consumers.SUBSCRIPTION_CHECKS, "conv", lambda user, org_id, object_id: object_id == 7)

    async def run():
        ws, ok, _ = await _connect(alice)
        assert ok
        await ws.receive_json_from()
        await ws.send_json_to({"action": "subscribe", "kind": "unknown", "id": 1})
        assert (await ws.receive_json_from())["type"] == "subscribe.denied"
        await ws.send_json_to({"action": "subscribe", "kind": "conv", "id": 8})
        assert (await ws.receive_json_from())["type"] == "subscribe.denied"
        await ws.send_json_to({"action": "subscribe", "kind": "conv", "id": 7})
        assert (await ws.receive_json_from())["type"] == "subscribed"
        await database_sync_to_async(
            lambda: realtime.publish("message.created", {"id": 1}, conversation_ids=[7])
        )()
        assert (await ws.receive_json_from(timeout=5))["type"] == "message.created"
        await ws.disconnect()

    asyncio.run(run())


@needs_shared_channel_layer
@pytest.mark.production
@pytest.mark.django_db(transaction=True)
def test_events_reach_a_browser_socket_through_the_real_server(alice, tmp_path):
    """End to end: uvicorn, session cookie, Redis channel layer between the test and the server process."""
    import websockets.sync.client as ws_client

    from tests.plugins.servers import start_asgi_server

    asgi_server = start_asgi_server(tmp_path)
    key = session_cookie_for(alice)
    url = asgi_server.base_url.replace("http://", "ws://") + "/ws/"
    with ws_client.connect(
        url, additional_headers={"Cookie": f"sessionid={key}"}, origin=asgi_server.base_url
    ) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "hello"
        received = []

        def got_event():
            realtime_publish_now(alice.pk)
            try:
                received.append(json.loads(ws.recv(timeout=0.5)))
            except TimeoutError:
                return False
            return True

        try:
            wait_until(got_event, timeout=15)
        finally:
            asgi_server.stop()
        assert received[-1]["type"] == "notification.created"


def realtime_publish_now(user_id):
    with transaction.atomic():
        realtime.publish("notification.created", {"text": "cross-process"}, user_ids=[user_id])


@needs_shared_channel_layer
def test_a_worker_publishes_every_frame_through_one_long_lived_loop_and_a_new_one_after_a_fork(monkeypatch):
    """Celery workers publish from plain threads: frames go through one persistent loop per process (its Redis
    connections stay open), in order, and a forked child (same module state, no thread) starts its own."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("user.987654", channel)
    try:
        realtime.deliver(["user.987654"], {"type": "quicksend.event", "event": {"n": 1}})
        first_loop = realtime._publisher_loop()
        realtime.deliver(["user.987654"], {"type": "quicksend.event", "event": {"n": 2}})
        assert realtime._publisher_loop() is first_loop and first_loop.is_running()
        got = [async_to_sync(layer.receive)(channel)["event"]["n"] for _ in range(2)]
        assert got == [1, 2]
        monkeypatch.setattr(realtime, "_loop_pid", -1)  # as a forked child sees it
        realtime.deliver(["user.987654"], {"type": "quicksend.event", "event": {"n": 3}})
        assert realtime._publisher_loop() is not first_loop
        assert async_to_sync(layer.receive)(channel)["event"]["n"] == 3
    finally:
        async_to_sync(layer.group_discard)("user.987654", channel)


@needs_shared_channel_layer
def test_a_publisher_learns_which_groups_someone_is_in():
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("conv.987654", channel)
    try:
        assert realtime.listened({"conv.987654", "conv.987655", "user.987654"}) == {"conv.987654"}
        assert realtime.listened(set()) == set()
    finally:
        async_to_sync(layer.group_discard)("conv.987654", channel)
    assert realtime.listened({"conv.987654"}) == set()


def _publish_a_batch(user_id):
    with realtime.collect():
        for n in range(3):
            with transaction.atomic():
                realtime.publish("notification.created", {"n": n}, user_ids=[user_id], event_id=f"batch.{n}")
        with transaction.atomic():  # a copy of an event already sent: the socket drops it
            realtime.publish("notification.created", {"n": 0}, user_ids=[user_id], event_id="batch.0")


@needs_shared_channel_layer
@pytest.mark.django_db(transaction=True)
def test_a_batch_of_events_to_one_socket_arrives_as_one_message_in_order(alice):
    """A batch's events to one group travel as one channel message and reach the browser as one WebSocket
    message (a JSON array, in order, copies of an event it already forwarded dropped); live.js unpacks it."""
    from channels.testing.websocket import WebsocketCommunicator as RawCommunicator

    async def run():
        key = await database_sync_to_async(session_cookie_for)(alice)
        ws = RawCommunicator(_app(), "/ws/", headers=[(b"cookie", f"sessionid={key}".encode())])
        connected, _ = await ws.connect()
        assert connected
        assert (await ws.receive_json_from())["type"] == "hello"
        await database_sync_to_async(_publish_a_batch)(alice.pk)
        texts = []
        while not await ws.receive_nothing(timeout=1):
            texts.append((await ws.receive_output(timeout=5))["text"])
        await ws.disconnect()
        return texts

    texts = asyncio.run(run())
    assert [json.loads(t) for t in texts] == [
        [{"type": "notification.created", "n": n} for n in range(3)],
    ]
