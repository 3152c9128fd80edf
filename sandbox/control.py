"""The sandbox's control API (JSON, under ``/sandbox/control/``) for tests, benchmarks and the phone page.

It has no credentials (the sandbox is a development tool, off in production unless QUICKSEND_SANDBOX=1);
POSTs must be ``application/json`` so a cross-site form cannot drive it. Documented in docs/sandbox.md.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from typing import TYPE_CHECKING

from sandbox import lifecycle, phone
from sandbox.http import Request, Response, json_response, render_control_message, render_number
from sandbox.state import E164, Account, TwilioError

if TYPE_CHECKING:
    from sandbox.app import SandboxApp

MAX_MEDIA_BYTES = 5 * 1024 * 1024


def phone_arg(request: Request) -> str:
    # A "+" left unencoded in a query string arrives as a space.
    return request.arg("phone").replace(" ", "+").strip()


class ControlApi:
    """The control API's handlers over one sandbox app (its store may be swapped in tests: read each time)."""

    def __init__(self, app: SandboxApp) -> None:
        self.app = app
        self.Response = Response
        self.json_response = json_response
        self.render_control_message = render_control_message
        self.render_number = render_number

    @property
    def store(self):
        return self.app.store

    def bad(self, message: str, status: int = 400) -> Response:
        return self.json_response({"error": message}, status)

    def body_of(self, request: Request) -> dict:
        if request.method in ("POST", "PUT") and request.body:
            if not request.headers.get("content-type", "").startswith("application/json"):
                raise TwilioError(415, 415, "control API POSTs must be application/json")
            try:
                return request.json()
            except ValueError as exc:
                raise TwilioError(400, 400, f"invalid JSON: {exc}")
        return {}

    def account_of(self, request: Request) -> Account:
        account = self.store.accounts.get(request.params["account"])
        if account is None:
            raise TwilioError(404, 20404, path=request.path)
        return account

    def account_json(self, account: Account) -> dict:
        return {
            "sid": account.sid,
            "auth_token": account.auth_token,
            "friendly_name": account.friendly_name,
            "status": account.status,
            "behaviour": account.behaviour.as_dict(),
            "in_flight": account.in_flight,
            "numbers": [self.render_number(n) for n in account.numbers.values()],
            "opted_out": sorted(account.opted_out),
        }

    async def health(self, request: Request) -> Response:
        return self.json_response({"ok": True, "accounts": len(self.store.accounts)})

    async def reset(self, request: Request) -> Response:
        self.body_of(request)
        self.store.reset()
        return self.json_response({"ok": True})

    async def reset_demo(self, request: Request) -> Response:
        self.body_of(request)
        self.store.reset_demo()
        return self.json_response({"ok": True})

    async def create_account(self, request: Request) -> Response:
        data = self.body_of(request)
        store = self.store
        try:
            account = store.create_account(
                data.get("friendly_name") or "Sandbox account",
                data.get("status", "active"),
                sid=data.get("sid"),
                auth_token=data.get("auth_token"),
            )
            if data.get("behaviour"):
                account.behaviour.update(data["behaviour"])
            for number in data.get("numbers", []):
                store.add_number(account.sid, **number)
        except (ValueError, TypeError) as exc:
            return self.bad(str(exc))
        return self.json_response(self.account_json(account), 201)

    async def get_account(self, request: Request) -> Response:
        return self.json_response(self.account_json(self.account_of(request)))

    async def update_account(self, request: Request) -> Response:
        account = self.account_of(request)
        data = self.body_of(request)
        if "status" in data:
            if data["status"] not in ("active", "suspended", "closed"):
                return self.bad("status must be active, suspended or closed")
            account.status = data["status"]
        if "friendly_name" in data:
            account.friendly_name = str(data["friendly_name"])
        return self.json_response(self.account_json(account))

    async def add_number(self, request: Request) -> Response:
        account = self.account_of(request)
        data = self.body_of(request)
        try:
            number = self.store.add_number(account.sid, **data)
        except (ValueError, TypeError) as exc:
            return self.bad(str(exc))
        return self.json_response(self.render_number(number), 201)

    async def remove_number(self, request: Request) -> Response:
        account = self.account_of(request)
        key = request.params["number"]
        for number in list(account.numbers.values()):
            if key in (number.sid, number.phone_number):
                self.store.remove_number(account.sid, number.sid)
                return self.json_response({"ok": True})
        return self.bad(f"no number {key} in {account.sid}", 404)

    async def behaviour(self, request: Request) -> Response:
        account = self.account_of(request)
        data = self.body_of(request)
        if data:
            try:
                account.behaviour.update(data)
            except (ValueError, TypeError) as exc:
                return self.bad(str(exc))
            if "seed" in data and data["seed"] is not None:
                account.rng.seed(int(data["seed"]))
            if not account.behaviour.hold_requests and account.release is not None:
                account.release.set()  # let parked requests go
                account.release = None
        return self.json_response(account.behaviour.as_dict())

    async def messages(self, request: Request) -> Response:
        account = self.account_of(request)
        items = [self.render_control_message(m, request.api_base) for m in account.messages.values()]
        return self.json_response({"messages": items})

    async def inbound(self, request: Request) -> Response:
        data = self.body_of(request)
        store = self.store
        customer = str(data.get("from", "")).strip()
        to = str(data.get("to", "")).strip()
        if not E164.match(customer):
            return self.bad("'from' must be the customer's number in E.164 (+14155550123)")
        number = store.by_number.get(to)
        if number is None:
            return self.bad(f"'to' ({to}) is not a sandbox number", 404)
        media: list[tuple[str, bytes]] = []
        for item in data.get("media", []) or []:
            try:
                content = base64.b64decode(item.get("content_base64", ""), validate=True)
            except (binascii.Error, ValueError):
                return self.bad("media content_base64 is not base64")
            media.append((item.get("content_type") or "application/octet-stream", content))
        if len(media) > 10 or sum(len(c) for _, c in media) > MAX_MEDIA_BYTES:
            return self.bad("at most 10 media and 5 MB in total")
        body = str(data.get("body", ""))
        if not body and not media:
            return self.bad("a text needs a body or media")
        message = store.create_inbound(number, customer, body, media)
        delivery = lifecycle.deliver_inbound(store, number, message, request.api_base)
        if data.get("wait", True):
            await delivery
        else:
            asyncio.create_task(delivery)
        return self.json_response(self.render_control_message(message, request.api_base), 201)

    async def received(self, request: Request) -> Response:
        customer = phone_arg(request)
        since = int(request.arg("since", "0") or 0)
        items = [
            self.render_control_message(m, request.api_base)
            for m in self.store.received.get(customer, [])
            if m.seq > since
        ]
        return self.json_response({"phone": customer, "messages": items})

    async def conversation(self, request: Request) -> Response:
        """What a customer phone shows: its texts and what it received, oldest first."""
        customer = phone_arg(request)
        store = self.store
        items = [*store.sent_by_customer.get(customer, []), *store.received.get(customer, [])]
        items.sort(key=lambda m: m.seq)
        return self.json_response(
            {"phone": customer, "messages": [self.render_control_message(m, request.api_base) for m in items]}
        )

    async def numbers(self, request: Request) -> Response:
        store = self.store
        items = []
        for number in store.by_number.values():
            account = store.accounts[number.account_sid]
            if account.status == "active":
                items.append(
                    {
                        "phone_number": number.phone_number,
                        "friendly_name": number.friendly_name,
                        "type": number.type,
                        "account_sid": number.account_sid,
                        "account_name": account.friendly_name,
                        "sms_url": number.sms_url,
                    }
                )
        return self.json_response({"numbers": items})

    async def phones(self, request: Request) -> Response:
        store = self.store
        return self.json_response({"phones": sorted(set(store.received) | set(store.sent_by_customer))})

    async def media(self, request: Request) -> Response:
        item = self.store.media.get(request.params["media"])
        if item is None:
            return self.bad("no such media", 404)
        if item.content is None:
            return self.Response(302, b"", "text/plain", [(b"location", item.url.encode())])
        return self.Response(
            200, item.content, item.content_type, [(b"cache-control", b"private, max-age=3600")]
        )


def routes(app: SandboxApp) -> list:
    api = ControlApi(app)
    account = r"(?P<account>AC[0-9a-f]{32})"
    return [
        ("GET", re.compile(r"^/control/health$"), api.health),
        ("POST", re.compile(r"^/control/reset$"), api.reset),
        ("POST", re.compile(r"^/control/reset-demo$"), api.reset_demo),
        ("POST", re.compile(r"^/control/accounts$"), api.create_account),
        ("GET", re.compile(f"^/control/accounts/{account}$"), api.get_account),
        ("POST", re.compile(f"^/control/accounts/{account}$"), api.update_account),
        ("POST", re.compile(f"^/control/accounts/{account}/numbers$"), api.add_number),
        ("DELETE", re.compile(f"^/control/accounts/{account}/numbers/(?P<number>[^/]+)$"), api.remove_number),
        ("GET", re.compile(f"^/control/accounts/{account}/behaviour$"), api.behaviour),
        ("POST", re.compile(f"^/control/accounts/{account}/behaviour$"), api.behaviour),
        ("GET", re.compile(f"^/control/accounts/{account}/messages$"), api.messages),
        ("POST", re.compile(r"^/control/inbound$"), api.inbound),
        ("GET", re.compile(r"^/control/received$"), api.received),
        ("GET", re.compile(r"^/control/conversation$"), api.conversation),
        ("GET", re.compile(r"^/control/numbers$"), api.numbers),
        ("GET", re.compile(r"^/control/phones$"), api.phones),
        ("GET", re.compile(r"^/control/media/(?P<media>ME[0-9a-f]{32})$"), api.media),
        *phone.routes(),
    ]
