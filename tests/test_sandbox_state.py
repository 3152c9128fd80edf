"""The sandbox's in-memory state, without a server: segments, opt-out keywords, memory bounds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox import state
from sandbox.segments import GSM7_BASIC, count_segments
from sandbox.state import Store, opt_out_type


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("[" * 80, 1),  # extension characters count twice
        ("[" * 81, 2),
        ("é" * 160, 1),  # é is GSM-7
        ("ê" * 70, 1),  # ê is not: UCS-2
        ("ê" * 71, 2),
        ("ê" * 134, 2),
        ("ê" * 135, 3),
        ("😀" * 35, 1),  # outside the BMP: two UTF-16 units each
        ("😀" * 36, 2),
    ],
)
def test_segments_follow_gsm7_and_ucs2_rules(body, segments):
    assert count_segments(body) == segments


@given(st.text(alphabet=sorted(GSM7_BASIC), min_size=1, max_size=1600))
def test_plain_gsm_text_needs_160_then_153_per_segment(body):
    expected = 1 if len(body) <= 160 else -(-len(body) // 153)
    assert count_segments(body) == expected


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("STOP", "STOP"),
        (" stop\n", "STOP"),
        ("Unsubscribe", "STOP"),
        ("stopall", "STOP"),
        ("start", "START"),
        ("YES", "START"),
        ("unstop", "START"),
        ("help", "HELP"),
        ("INFO", "HELP"),
        ("stop it", None),
        ("please STOP", None),
        ("", None),
    ],
)
def test_only_a_bare_keyword_is_an_opt_out_keyword(body, kind):
    assert opt_out_type(body) == kind


def test_demo_accounts_are_recreated_by_reset():
    store = Store()
    store.create_account("extra")
    assert len(store.accounts) == 4
    store.reset()
    assert len(store.accounts) == 3
    assert {n.phone_number for n in store.by_number.values()} == {"+14155550100", "+18885550100", "55501"}


def test_oldest_finished_messages_are_forgotten_beyond_the_bound(monkeypatch):
    monkeypatch.setattr(state, "MAX_MESSAGES_PER_ACCOUNT", 3)
    store = Store()
    account = store.create_account()
    store.add_number(account.sid, "+12065550100")
    messages = []
    for i in range(5):
        message = store.create_outbound(account, "+14155550123", "+12065550100", str(i), [], "", 36000)
        message.set_status("delivered")
        messages.append(message)
    assert list(account.messages) == [m.sid for m in messages[-3:]]
    in_flight = [
        store.create_outbound(account, "+14155550123", "+12065550100", f"queued {i}", [], "", 36000)
        for i in range(4)
    ]
    # The delivered ones went first; messages still being sent are never forgotten (the bound is soft).
    assert list(account.messages) == [m.sid for m in in_flight]


def test_a_number_belongs_to_one_account():
    store = Store()
    account = store.create_account()
    with pytest.raises(ValueError, match="already belongs"):
        store.add_number(account.sid, "+14155550100")
    with pytest.raises(ValueError, match="E.164"):
        store.add_number(account.sid, "4155550100")
    with pytest.raises(ValueError, match="short code"):
        store.add_number(account.sid, "+1555", type="shortcode")


def test_the_standalone_sandbox_keeps_its_long_lived_state_out_of_full_collections(monkeypatch):
    """Started as its own server (lifespan), the sandbox moves what has lived a while out of the garbage
    collector's reach every few seconds, so a full collection over 100,000 stored messages never pauses every
    request at once; it stops doing so when the server stops."""
    import asyncio
    import gc

    from sandbox import app as sandbox_app

    monkeypatch.setattr(sandbox_app, "FREEZE_SECONDS", 0.01)

    async def run() -> tuple[int, int]:
        events: asyncio.Queue = asyncio.Queue()
        sent: list[str] = []
        frozen = asyncio.Event()
        real_freeze = gc.freeze

        def freeze() -> None:
            real_freeze()
            frozen.set()

        monkeypatch.setattr(sandbox_app.gc, "freeze", freeze)

        async def receive():
            return await events.get()

        async def send(message):
            sent.append(message["type"])

        before = gc.get_freeze_count()
        server = asyncio.create_task(sandbox_app.SandboxApp()({"type": "lifespan"}, receive, send))
        await events.put({"type": "lifespan.startup"})
        await asyncio.wait_for(frozen.wait(), timeout=5)
        after = gc.get_freeze_count()
        await events.put({"type": "lifespan.shutdown"})
        await server
        assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
        return before, after

    try:
        before, after = asyncio.run(run())
    finally:
        gc.unfreeze()
    assert after > before
