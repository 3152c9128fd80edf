"""The Twilio sandbox for tests: one standalone sandbox process per test session (per xdist worker), and per
test a helper with fresh accounts so tests never share state.

    def test_something(twilio_sandbox):
        sid, token = twilio_sandbox.new_account()
        number = twilio_sandbox.add_number(sid)                 # a fresh local number, SMS + MMS
        client = twilio_sandbox.client(sid, token)              # the real twilio library, pointed at it
        client.messages.create(to="+14155550123", from_=number["phone_number"], body="Hi")
        wait_until(lambda: twilio_sandbox.received("+14155550123"))

``settings.TWILIO_API_BASE_URL`` points at the sandbox for the duration of the test. ``webhook_receiver``
is a tiny HTTP server in the test process that records what the sandbox posts (status callbacks, inbound
webhooks) and can answer with TwiML.
"""

from __future__ import annotations

import base64
import itertools
import os
import sys
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import requests

from tests.plugins.servers import ServerProcess, free_port, launch

# Area codes whose 555-01XX numbers are valid for phonenumbers (fictional, never real subscribers).
_AREA_CODES = ["206", "212", "213", "303", "305", "312", "404", "415", "503", "512", "617", "702", "718"]
_number_counter = itertools.count()
_short_code_counter = itertools.count(60000)


def fresh_phone_number() -> str:
    """A US number unique within this test process (so never owned by another test's account)."""
    n = next(_number_counter)
    if n < 100 * len(_AREA_CODES):
        return f"+1{_AREA_CODES[n // 100]}55501{n % 100:02d}"
    return f"+1206555{n % 10000:04d}"


class SandboxProcess(ServerProcess):
    @property
    def sandbox_url(self) -> str:
        return self.base_url + "/sandbox"


def start_sandbox(log_dir: Path) -> SandboxProcess:
    """``python manage.py twilio_sandbox --port N`` on a free port, waited on until it answers."""
    port = free_port()
    log_path = log_dir / f"twilio-sandbox-{port}.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1", QUICKSEND_DISABLE_SCHEDULER="1")
    cmd = [sys.executable, "manage.py", "twilio_sandbox", "--host", "127.0.0.1", "--port", str(port)]
    base_url = f"http://127.0.0.1:{port}"
    return launch(
        cmd, env, log_path, base_url, "/sandbox/control/health", "the Twilio sandbox", SandboxProcess
    )


class Sandbox:
    """What a test sees of the sandbox: its base URL, fresh accounts and numbers, and the control API."""

    def __init__(self, base_url: str):
        self.base_url = base_url  # ends in /sandbox: client.api.base_url = this
        self.http = requests.Session()
        self.accounts: list[str] = []

    # --- control API ---------------------------------------------------------------------------
    def control(self, method: str, path: str, json: dict | None = None, expect: int | None = None) -> dict:
        response = self.http.request(method, f"{self.base_url}/control{path}", json=json, timeout=20)
        if expect is not None:
            assert response.status_code == expect, response.text
        elif response.status_code >= 400:
            raise AssertionError(f"sandbox control {method} {path} → {response.status_code}: {response.text}")
        return response.json()

    def new_account(self, status: str = "active", friendly_name: str = "Test account") -> tuple[str, str]:
        """A fresh account (no numbers); returns (account_sid, auth_token)."""
        data = self.control("POST", "/accounts", {"status": status, "friendly_name": friendly_name})
        self.accounts.append(data["sid"])
        return data["sid"], data["auth_token"]

    def add_number(
        self,
        account_sid: str,
        phone_number: str | None = None,
        type: str = "local",  # noqa: A002 - mirrors the control API
        friendly_name: str = "",
        sms: bool = True,
        mms: bool = True,
        voice: bool = True,
        sms_url: str = "",
        sms_method: str = "POST",
    ) -> dict:
        """Give the account a number (a fresh one unless ``phone_number``); returns its Twilio JSON."""
        if phone_number is None:
            phone_number = str(next(_short_code_counter)) if type == "shortcode" else fresh_phone_number()
        return self.control(
            "POST",
            f"/accounts/{account_sid}/numbers",
            {
                "phone_number": phone_number,
                "type": type,
                "friendly_name": friendly_name,
                "sms": sms,
                "mms": mms,
                "voice": voice,
                "sms_url": sms_url,
                "sms_method": sms_method,
            },
        )

    def remove_number(self, account_sid: str, number: str) -> None:
        """Release a number (by PN sid or phone number), as if it was removed at Twilio."""
        self.control("DELETE", f"/accounts/{account_sid}/numbers/{number}")

    def set_status(self, account_sid: str, status: str) -> dict:
        return self.control("POST", f"/accounts/{account_sid}", {"status": status})

    def account(self, account_sid: str) -> dict:
        return self.control("GET", f"/accounts/{account_sid}")

    def behaviour(self, account_sid: str, **changes) -> dict:
        """Change how the account's messages behave, e.g. ``rates={"local": 50}``, ``out_of_order=1``,
        ``duplicates=1``, ``delay_ms=[0, 5]``, ``concurrency_limit=2``, ``hold_requests=True``."""
        return self.control("POST", f"/accounts/{account_sid}/behaviour", changes)

    def inbound(
        self,
        from_: str,
        to: str,
        body: str = "",
        media: Iterable[tuple[str, bytes]] = (),
        wait: bool = True,
    ) -> dict:
        """A customer texts a sandbox number; with ``wait`` it returns once the webhook answered."""
        payload = {
            "from": from_,
            "to": to,
            "body": body,
            "media": [
                {"content_type": ct, "content_base64": base64.b64encode(content).decode()}
                for ct, content in media
            ],
            "wait": wait,
        }
        return self.control("POST", "/inbound", payload)

    def received(self, customer_number: str) -> list[dict]:
        """Messages delivered to a customer's phone, oldest first."""
        return self.control("GET", f"/received?phone={requests.utils.quote(customer_number)}")["messages"]

    def messages(self, account_sid: str) -> list[dict]:
        """Every message of the account, oldest first, with ``handoff_at``, ``history``, ``callbacks``."""
        return self.control("GET", f"/accounts/{account_sid}/messages")["messages"]

    def message(self, account_sid: str, message_sid: str) -> dict:
        return next(m for m in self.messages(account_sid) if m["sid"] == message_sid)

    def client(self, account_sid: str, auth_token: str):
        """The official twilio client, pointed at this sandbox."""
        from twilio.rest import Client

        client = Client(account_sid, auth_token)
        client.api.base_url = self.base_url
        return client


@pytest.fixture(scope="session")
def twilio_sandbox_server(tmp_path_factory):
    """The standalone sandbox process of this test session (per xdist worker)."""
    server = start_sandbox(tmp_path_factory.mktemp("twilio-sandbox"))
    yield server
    server.stop()


@pytest.fixture
def twilio_sandbox(twilio_sandbox_server, settings):
    """Per test: the sandbox helper; settings.TWILIO_API_BASE_URL points at the sandbox."""
    if twilio_sandbox_server.proc.poll() is not None:
        raise AssertionError(f"the sandbox died:\n{twilio_sandbox_server.log()}")
    settings.TWILIO_API_BASE_URL = twilio_sandbox_server.sandbox_url
    sandbox = Sandbox(twilio_sandbox_server.sandbox_url)
    yield sandbox
    # The demo accounts are shared by the session: whatever a test changed on them is undone.
    sandbox.control("POST", "/reset-demo")
    sandbox.http.close()


class _Recorded:
    def __init__(self, method: str, path: str, headers: dict, body: bytes):
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


class WebhookReceiver:
    """Records every request; ``url(path)`` is the full URL to give the sandbox; ``reply`` sets the body
    (e.g. TwiML) and status answered for a path."""

    def __init__(self):
        self.requests: list[_Recorded] = []
        self.replies: dict[str, tuple[int, str, str]] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                with receiver.lock:
                    receiver.requests.append(_Recorded(self.command, self.path, dict(self.headers), body))
                status, content_type, text = receiver.replies.get(path, (200, "text/plain", ""))
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                # No keep-alive: a pooled connection must never outlive this test's receiver.
                self.send_header("Connection", "close")
                self.close_connection = True
                self.end_headers()
                self.wfile.write(data)

            do_POST = _handle  # noqa: N815
            do_GET = _handle  # noqa: N815

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return self.base_url + path

    def reply(self, path: str, text: str, status: int = 200, content_type: str = "text/xml") -> None:
        self.replies[path] = (status, content_type, text)

    def at(self, path: str) -> list[_Recorded]:
        with self.lock:
            return [r for r in self.requests if r.path.split("?", 1)[0] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook_receiver():
    """An HTTP server in the test process recording what the sandbox posts to it."""
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()
