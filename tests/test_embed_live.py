"""The embed WebSocket (/ws/embed/): an embed session's key (cookie or subprotocol) opens it; it subscribes to
its record's conversations only, hears nothing of the member's other texts, and closes when the session
ends. Real consumers through Channels' communicator (the Redis channel layer in production mode)."""

import asyncio
import json

import pytest
from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from django.urls import path

from quicksend import consumers
from tenancy.embed import do_end_embed_sessions, do_mint_launch_token
from tests.factories_crm import LeadFactory
from tests.factories_messaging import (
    ConversationFactory,
    PhoneNumberFactory,
    TwilioAccountFactory,
    store_inbound,
)
from tests.live_socket import WebsocketCommunicator, events_of


def _app():
    return AuthMiddlewareStack(URLRouter([path("ws/embed/", consumers.EmbedEventsConsumer.as_asgi())]))


@pytest.fixture
def world(org_a, aaron):
    number = PhoneNumberFactory(account=TwilioAccountFactory(organization=org_a))
    number.assigned_members.add(aaron.memberships.get(organization=org_a))
    maria = LeadFactory(organization=org_a, owner=aaron, mobile_phone="+12025550143", external_id="L-1")
    olga = LeadFactory(organization=org_a, owner=aaron, mobile_phone="+12025550144", external_id="L-2")
    mine = ConversationFactory(
        phone_number=number, customer_number="+12025550143", record_type="lead", record_id=maria.pk
    )
    theirs = ConversationFactory(
        phone_number=number, customer_number="+12025550144", record_type="lead", record_id=olga.pk
    )
    return {"number": number, "mine": mine, "theirs": theirs}


def _key(org) -> str:
    from rest_framework.test import APIClient

    token = do_mint_launch_token(
        org, crm="generic", crm_user_id="", email="aaron@acme.test", record_type="lead", external_id="L-1"
    )
    answer = APIClient().post(
        "/api/v1/embed/session",
        {"token": token, "org": org.slug, "record_type": "lead", "external_id": "L-1"},
        format="json",
    )
    return answer.json()["key"]


async def _frames(ws, quiet=0.6) -> list[dict]:
    got = []
    while not await ws.receive_nothing(timeout=quiet):
        output = await ws.receive_output()
        if output["type"] == "websocket.send":
            got.extend(events_of(output["text"]))
        else:
            got.append({"type": "closed", "code": output.get("code")})
    return got


async def _open(key, by="subprotocol"):
    if by == "subprotocol":
        ws = WebsocketCommunicator(_app(), "/ws/embed/", subprotocols=["qs-embed", f"qs-embed-key.{key}"])
    else:
        ws = WebsocketCommunicator(
            _app(), "/ws/embed/", headers=[(b"cookie", f"__Host-qs_embed={key}".encode())]
        )
    connected, subprotocol = await ws.connect()
    return ws, connected, subprotocol


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("by", ["subprotocol", "cookie"])
def test_embed_socket_hears_its_record_and_nothing_else(org_a, world, by):
    key = _key(org_a)

    async def run():
        ws, connected, subprotocol = await _open(key, by)
        assert connected
        assert subprotocol == ("qs-embed" if by == "subprotocol" else None)  # the key is never echoed
        assert (await ws.receive_json_from())["type"] == "hello"
        await ws.send_json_to({"action": "subscribe", "kind": "conv", "id": world["theirs"].pk})
        assert (await ws.receive_json_from(timeout=5))["type"] == "subscribe.denied"
        await ws.send_json_to({"action": "subscribe", "kind": "notifications", "id": 1})
        assert (await ws.receive_json_from(timeout=5))["type"] == "subscribe.denied"
        await ws.send_json_to({"action": "subscribe", "kind": "conv", "id": world["mine"].pk})
        assert (await ws.receive_json_from(timeout=5))["type"] == "subscribed"
        # Olga writes: the member hears it in the app; the embed socket of Maria's record does not.
        await database_sync_to_async(store_inbound)(world["number"], "+12025550144", "Olga's secret")
        heard = await _frames(ws)
        assert "Olga's secret" not in json.dumps(heard)
        await database_sync_to_async(store_inbound)(world["number"], "+12025550143", "Maria writes")
        heard = await _frames(ws)
        created = [f for f in heard if f["type"] == "message.created"]
        assert created and created[0]["message"]["body"] == "Maria writes"
        assert all(f.get("conversation_id", world["mine"].pk) == world["mine"].pk for f in heard)
        await ws.disconnect()

    asyncio.run(run())


@pytest.mark.django_db(transaction=True)
def test_embed_socket_refuses_a_wrong_key_and_closes_when_the_session_ends(org_a, world):
    key = _key(org_a)

    async def run():
        for bad in ("qse_" + "x" * 43, "", "sessionid"):
            ws, connected, _ = await _open(bad)
            assert not connected
        ws, connected, _ = await _open(key)
        assert connected
        await ws.receive_json_from()
        await ws.send_json_to({"action": "subscribe", "kind": "conv", "id": world["mine"].pk})
        assert (await ws.receive_json_from(timeout=5))["type"] == "subscribed"
        await database_sync_to_async(do_end_embed_sessions)(org_a)
        frames = await _frames(ws, quiet=1.0)
        assert {"type": "closed", "code": consumers.SESSION_ENDED} in frames

    asyncio.run(run())
