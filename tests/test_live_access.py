"""An open WebSocket follows its user's access: logging out, deactivation and leaving the organization close
it; losing sight of a conversation (visibility rule, reassignment) ends that subscription; anything that
announces nothing is caught by the periodic re-check. Real consumers through Channels' communicator (the
Redis channel layer in production mode), changes made through the real views and services."""

import asyncio

import pytest
from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.sessions import SessionMiddlewareStack
from django.contrib.auth import get_user_model
from django.urls import path

from messaging.inbox import actions as inbox
from messaging.models import InboxSettings
from quicksend import consumers
from tenancy import services as tenancy
from tenancy.models import Membership, Role
from tests.factories import MembershipFactory
from tests.factories_messaging import PhoneNumberFactory, TwilioAccountFactory, store_inbound
from tests.live_socket import WebsocketCommunicator, events_of
from tests.markers import needs_shared_channel_layer
from tests.sessions import session_cookie_for

CUSTOMER = "+12025550171"


def _app():
    return SessionMiddlewareStack(
        AuthMiddlewareStack(URLRouter([path("ws/", consumers.EventsConsumer.as_asgi())]))
    )


@pytest.fixture
def number(org_a):
    return PhoneNumberFactory(account=TwilioAccountFactory(organization=org_a))


@pytest.fixture
def amy(org_a):
    return MembershipFactory(organization=org_a, role=Role.AGENT, user__username="amy").user


@pytest.fixture
def conversation(number, amy):
    conversation = store_inbound(number, CUSTOMER, "first").conversation
    inbox.do_accept_conversation(conversation, amy)
    return conversation


class Socket:
    """A browser tab's socket, subscribed to one conversation."""

    def __init__(self, ws: WebsocketCommunicator, session_key: str):
        self.ws, self.session_key = ws, session_key

    @classmethod
    async def open(cls, user, org, conversation_id: int) -> "Socket":
        key = await database_sync_to_async(session_cookie_for)(user, org)
        ws = WebsocketCommunicator(_app(), "/ws/", headers=[(b"cookie", f"sessionid={key}".encode())])
        connected, _ = await ws.connect()
        assert connected
        assert (await ws.receive_json_from())["type"] == "hello"
        await ws.send_json_to({"action": "subscribe", "kind": "conv", "id": conversation_id})
        assert (await ws.receive_json_from(timeout=5))["type"] == "subscribed"
        return cls(ws, key)

    async def outputs(self, quiet: float = 0.5) -> list[dict]:
        """Everything the socket sent (frames and a close) until it stays quiet for ``quiet`` seconds."""
        got = []
        while not await self.ws.receive_nothing(timeout=quiet):
            got.append(await self.ws.receive_output())
        return got

    async def frame_types(self) -> list[str]:

        return [
            e["type"]
            for o in await self.outputs()
            if o["type"] == "websocket.send"
            for e in events_of(o["text"])
        ]

    async def close_code(self) -> int | None:
        closes = [o.get("code") for o in await self.outputs() if o["type"] == "websocket.close"]
        return closes[-1] if closes else None


def text(number, body):
    return database_sync_to_async(store_inbound)(number, CUSTOMER, body)


@pytest.mark.django_db(transaction=True)
def test_logging_out_closes_that_sessions_socket_and_no_other(org_a, number, conversation, alice):
    from django.test import Client

    async def run():
        tab = await Socket.open(alice, org_a, conversation.pk)
        other_device = await Socket.open(alice, org_a, conversation.pk)
        browser = Client()
        browser.cookies["sessionid"] = tab.session_key
        response = await database_sync_to_async(browser.post)("/logout/")
        assert response.status_code == 302
        assert await tab.close_code() == consumers.SESSION_ENDED
        await text(number, "after logout")
        assert await tab.ws.receive_nothing(timeout=0.5)
        assert "message.created" in await other_device.frame_types()  # still logged in there
        await other_device.ws.disconnect()

    asyncio.run(run())


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["membership", "user"])
def test_deactivation_closes_the_socket(org_a, number, conversation, alice, aaron, how):
    async def run():
        socket = await Socket.open(aaron, org_a, conversation.pk)
        watcher = await Socket.open(alice, org_a, conversation.pk)
        if how == "membership":
            membership = await database_sync_to_async(Membership.objects.get)(user=aaron, organization=org_a)
            await database_sync_to_async(tenancy.do_set_member_active)(membership, alice, False)
            expected = consumers.ACCESS_ENDED
        else:  # an admin turns the account off (the Django admin saves the user)
            user = await database_sync_to_async(get_user_model().objects.get)(pk=aaron.pk)
            user.is_active = False
            await database_sync_to_async(user.save)()
            expected = consumers.SESSION_ENDED  # an inactive user's session no longer logs anyone in
        assert await socket.close_code() == expected
        await text(number, "after deactivation")
        assert await socket.ws.receive_nothing(timeout=0.5)
        assert "message.created" in await watcher.frame_types()
        await watcher.ws.disconnect()

    asyncio.run(run())


@pytest.mark.django_db(transaction=True)
def test_removal_from_the_organization_closes_the_socket(org_a, number, conversation, alice, aaron):
    async def run():
        socket = await Socket.open(aaron, org_a, conversation.pk)
        membership = await database_sync_to_async(Membership.objects.get)(user=aaron, organization=org_a)
        await database_sync_to_async(tenancy.do_remove_member)(membership, alice)
        assert await socket.close_code() == consumers.ACCESS_ENDED
        await text(number, "after removal")
        assert await socket.ws.receive_nothing(timeout=0.5)
        # Reconnecting with the same, still valid, session is refused too.
        again = WebsocketCommunicator(
            _app(), "/ws/", headers=[(b"cookie", f"sessionid={socket.session_key}".encode())]
        )
        assert await again.connect() == (False, consumers.ACCESS_ENDED)

    asyncio.run(run())


@pytest.mark.django_db(transaction=True)
def test_a_stricter_visibility_rule_ends_the_subscription_of_those_who_lose_sight(
    org_a, number, conversation, alice, aaron, amy
):
    async def run():
        aarons = await Socket.open(aaron, org_a, conversation.pk)
        amys = await Socket.open(amy, org_a, conversation.pk)  # the owner keeps it
        await database_sync_to_async(inbox.do_save_inbox_settings)(org_a, alice, agent_visibility="own")
        assert await aarons.frame_types() == ["subscription.revoked"]
        await text(number, "after the rule changed")
        assert await aarons.ws.receive_nothing(timeout=0.5)
        assert "message.created" in await amys.frame_types()
        await aarons.ws.send_json_to({"action": "ping"})  # the socket itself stays open
        assert (await aarons.ws.receive_json_from(timeout=5))["type"] == "pong"
        for socket in (aarons, amys):
            await socket.ws.disconnect()

    asyncio.run(run())


@pytest.mark.django_db(transaction=True)
def test_reassigning_a_conversation_away_ends_the_previous_owners_subscription(
    org_a, number, conversation, alice, aaron, amy
):
    InboxSettings.objects.create(organization=org_a, agent_visibility="own")

    async def run():
        amys = await Socket.open(amy, org_a, conversation.pk)
        await database_sync_to_async(inbox.do_reassign_conversation)(conversation, alice, user=aaron)
        assert "subscription.revoked" in await amys.frame_types()
        await text(number, "for aaron now")
        assert await amys.ws.receive_nothing(timeout=0.5)
        await amys.ws.disconnect()

    asyncio.run(run())


@pytest.mark.django_db(transaction=True)
def test_a_change_that_announces_nothing_is_caught_when_the_next_event_is_delivered(
    org_a, number, conversation, aaron, monkeypatch
):
    monkeypatch.setattr(consumers, "ACCESS_RECHECK_SECONDS", 0.0)
    InboxSettings.objects.create(organization=org_a, agent_visibility="all")

    async def run():
        socket = await Socket.open(aaron, org_a, conversation.pk)
        # Written straight to the table: no service, no signal, nothing announced.
        await database_sync_to_async(InboxSettings.objects.filter(organization=org_a).update)(
            agent_visibility="own"
        )
        # The check runs beside that event's delivery; from then on nothing of the conversation arrives.
        await text(number, "while nobody told the socket")
        assert "subscription.revoked" in await socket.frame_types()
        await text(number, "after the check")
        assert await socket.ws.receive_nothing(timeout=0.5)
        await socket.ws.disconnect()

    asyncio.run(run())


@pytest.mark.django_db(transaction=True)
def test_a_socket_follows_the_organization_its_session_switched_to(
    org_a, org_b, number, conversation, alice, monkeypatch
):
    from django.contrib.sessions.backends.db import SessionStore

    MembershipFactory(organization=org_b, user=alice, role=Role.ADMIN)
    monkeypatch.setattr(consumers, "ACCESS_RECHECK_SECONDS", 0.0)

    def switch_organization(session_key):  # what choosing another organization in another tab does
        session = SessionStore(session_key)
        session["org_id"] = org_b.pk
        session.save()

    async def run():
        socket = await Socket.open(alice, org_a, conversation.pk)
        await database_sync_to_async(switch_organization)(socket.session_key)
        await text(number, "the event that makes it check")
        assert "subscription.revoked" in await socket.frame_types()
        await text(number, "seen from the other organization?")
        assert await socket.ws.receive_nothing(timeout=0.5)
        await socket.ws.disconnect()

    asyncio.run(run())


@needs_shared_channel_layer
@pytest.mark.production
@pytest.mark.django_db(transaction=True)
def test_through_the_real_server_a_logout_and_a_deactivation_elsewhere_close_the_sockets(
    org_a, number, conversation, alice, aaron, tmp_path
):
    """uvicorn holds the sockets; the logout goes through its HTTP side, the deactivation is made by another
    process (this one, as an admin's request on another web process would), through Redis."""
    import contextlib
    import json

    import requests
    import websockets.sync.client as ws_client
    from websockets.exceptions import ConnectionClosed

    from tests.plugins.servers import start_asgi_server

    server = start_asgi_server(tmp_path)
    url = server.base_url.replace("http://", "ws://") + "/ws/"

    sockets = contextlib.ExitStack()

    def open_socket(user):
        key = session_cookie_for(user, org_a)
        ws = sockets.enter_context(
            ws_client.connect(url, additional_headers={"Cookie": f"sessionid={key}"}, origin=server.base_url)
        )
        assert json.loads(ws.recv(timeout=10))["type"] == "hello"
        ws.send(json.dumps({"action": "subscribe", "kind": "conv", "id": conversation.pk}))
        assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
        return ws, key

    def close_code(ws) -> int | None:
        try:
            while True:
                ws.recv(timeout=10)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None

    try:
        aarons, _ = open_socket(aaron)
        alices, alice_key = open_socket(alice)
        tenancy.do_set_member_active(Membership.objects.get(user=aaron, organization=org_a), alice, False)
        assert close_code(aarons) == consumers.ACCESS_ENDED

        browser = requests.Session()
        browser.cookies.set("sessionid", alice_key)
        assert browser.get(server.base_url + "/profile/", timeout=10).status_code == 200
        logout = browser.post(
            server.base_url + "/logout/",
            data={"csrfmiddlewaretoken": browser.cookies["csrftoken"]},
            allow_redirects=False,
            timeout=10,
        )
        assert logout.status_code == 302
        assert close_code(alices) == consumers.SESSION_ENDED
    finally:
        sockets.close()
        server.stop()


@pytest.mark.django_db
def test_an_access_check_is_a_few_queries_whatever_the_traffic(
    org_a, conversation, aaron, django_assert_max_num_queries
):
    InboxSettings.objects.create(organization=org_a, agent_visibility="team")
    key = session_cookie_for(aaron, org_a)
    # The session, the user, the membership; per conversation watched: the membership, the rule, the check.
    with django_assert_max_num_queries(6):
        code, org_id, lost = consumers.check_access(key, aaron.pk, [("conv", conversation.pk)])
    assert (code, org_id, lost) == (None, org_a.pk, [("conv", conversation.pk)])  # amy's, not his team's
