"""The HTTP session under every Twilio client reads the environment's proxy settings once per origin, and
means the same as requests' own."""

from __future__ import annotations

import os

import requests
import requests.sessions

from messaging.twilio.client import EnvironmentOnceSession, client_for_credentials

URLS = (
    "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json",
    "https://api.twilio.com/2010-04-01/Accounts/AC2/Messages.json",
    "http://127.0.0.1:8000/sandbox/2010-04-01/Accounts/AC1/Messages.json",
    "http://127.0.0.1:8000/sandbox/2010-04-01/Accounts/AC2/Messages.json",
)


def test_the_environment_is_read_once_per_origin_and_gives_what_requests_gives(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    plain = requests.Session()
    expected = [plain.merge_environment_settings(url, {}, None, None, None) for url in URLS]
    reads = []
    read = requests.sessions.get_environ_proxies
    monkeypatch.setattr(
        requests.sessions, "get_environ_proxies", lambda *a, **k: reads.append(a[0]) or read(*a, **k)
    )
    session = EnvironmentOnceSession()
    assert [session.merge_environment_settings(url, {}, None, None, None) for url in URLS] == expected
    assert reads == [URLS[0], URLS[2]]  # once per origin
    assert expected[0]["proxies"]["https"] == "http://proxy.example:3128"
    assert "http" not in expected[2]["proxies"]  # no_proxy: the sandbox is reached directly


def test_what_a_caller_passes_is_not_cached(monkeypatch):
    session = EnvironmentOnceSession()
    mine = session.merge_environment_settings(
        "https://api.twilio.com/x", {"https": "http://p:1"}, None, None, None
    )
    assert mine["proxies"]["https"] == "http://p:1"
    assert (
        session.merge_environment_settings("https://api.twilio.com/x", {}, None, None, None)["proxies"].get(
            "https"
        )
        != "http://p:1"
    )


def test_twilio_clients_use_it_with_twilios_connection_pools():
    client = client_for_credentials("AC" + "0" * 32, "token")
    session = client.http_client.session
    assert isinstance(session, EnvironmentOnceSession)
    assert session.adapters["https://"]._pool_maxsize == min(32, os.cpu_count() + 4)
