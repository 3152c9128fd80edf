"""The sandbox as a plain ASGI application: Twilio's REST API under ``/sandbox/2010-04-01/``, the control
API under ``/sandbox/control/`` and the customer phone page under ``/sandbox/phone/``.

It never calls into Django's request machinery or ORM, so the app that mounts it (quicksend/asgi.py) can
call it over HTTP from a sync view without waiting on the thread that view occupies.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import calendar
import gc
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl, urlencode

from sandbox import lifecycle, webhooks
from sandbox.http import (
    PREFIX,
    Request,
    Response,
    account_uri,
    error_response,
    json_response,
    render_account,
    render_media,
    render_message,
    render_number,
)
from sandbox.segments import count_segments
from sandbox.state import (
    API_VERSION,
    Account,
    Media,
    Message,
    Number,
    Store,
    TwilioError,
    get_store,
)

log = logging.getLogger("quicksend.sandbox")
MAX_BODY = 40 * 1024 * 1024  # inbound media arrive base64-encoded in the control API's JSON


def page(
    request: Request, items: list, key: str, render: Callable[[object], dict], path: str, descending: bool
) -> dict:
    """One page of a Twilio list: ``PageSize`` (≤ 1000); ``PageToken`` is ``PA<seq>`` (the items after that
    one, in list order) or ``PB<seq>`` (the page before it), so pages stay put while items are added."""
    try:
        size = min(max(int(request.arg("PageSize", "50")), 1), 1000)
        page_no = max(int(request.arg("Page", "0")), 0)
    except ValueError:
        raise TwilioError(400, 20001, "Invalid paging parameters")
    token = request.arg("PageToken")
    if token[:2] in ("PA", "PB") and token[2:].isdigit():
        mark = int(token[2:])
        if (token[:2] == "PA") == descending:
            after = [i for i in items if i.seq < mark]
        else:
            after = [i for i in items if i.seq > mark]
        if token[:2] == "PA":
            chunk, more = after[:size], len(after) > size
        else:  # the items before the mark, in list order: the last `size` of them
            chunk, more = after[-size:], True
    elif token:
        raise TwilioError(400, 20001, "Invalid PageToken")
    else:
        chunk, more = items[:size], len(items) > size
    filters = [(k, v) for k, v in request.query if k not in ("PageSize", "Page", "PageToken")]

    def uri(page_number: int, page_token: str | None = None) -> str:
        query = [*filters, ("PageSize", str(size)), ("Page", str(page_number))]
        if page_token:
            query.append(("PageToken", page_token))
        return f"{path}?{urlencode(query)}"

    start = page_no * size
    return {
        "end": start + max(len(chunk) - 1, 0),
        "first_page_uri": uri(0),
        "next_page_uri": uri(page_no + 1, f"PA{chunk[-1].seq}") if more and chunk else None,
        "page": page_no,
        "page_size": size,
        "previous_page_uri": uri(page_no - 1, f"PB{chunk[0].seq}") if page_no > 0 and chunk else None,
        "start": start,
        "uri": uri(page_no, token or None),
        key: [render(item) for item in chunk],
    }


# --- filters ---------------------------------------------------------------------------------------
DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?Z?)?$")


def parse_date(value: str, end_of_day: bool) -> float:
    match = DATE_RE.match(value.strip())
    if not match:
        raise TwilioError(400, 20001, f"Invalid date {value!r}")
    y, mo, d, h, mi, s = match.groups()
    if h is None:
        h, mi, s = (23, 59, 59) if end_of_day else (0, 0, 0)
    return calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(s), 0, 0, 0)) + (
        0.999999 if end_of_day and match.group(4) is None else 0
    )


def filter_messages(request: Request, messages: list[Message]) -> list[Message]:
    """To / From / DateSent (that GMT day) / DateSent< (on or before) / DateSent> (on or after)."""
    for key, value in request.query:
        if key == "To":
            messages = [m for m in messages if m.to == value]
        elif key == "From":
            messages = [m for m in messages if m.from_ == value]
        elif key in ("DateSent", "DateSent<", "DateSent>"):
            if key == "DateSent":  # a day: any time part is ignored
                value = value.strip()[:10]
            low = parse_date(value, end_of_day=False) if key in ("DateSent", "DateSent>") else None
            high = parse_date(value, end_of_day=True) if key in ("DateSent", "DateSent<") else None
            messages = [
                m
                for m in messages
                if m.date_sent is not None
                and (low is None or m.date_sent >= low)
                and (high is None or m.date_sent <= high)
            ]
    return messages


# --- the application -------------------------------------------------------------------------------
Handler = Callable[[Request], Awaitable[Response]]


FREEZE_SECONDS = 10.0


async def freeze_long_lived() -> None:
    """Keep the standalone sandbox's state out of the garbage collector's full passes.

    It holds up to 100,000 messages per account in memory (a benchmark's whole run). A full collection walks
    every tracked object, so as that state grows each one pauses the server longer (0.15 s for 80,000
    messages on the bench host, more when it is busy) and holds up every request at once: the texts sent
    during it are accepted together, in a later second than they were sent in. Every few seconds what has
    lived that long is moved out of the collector's reach (``gc.freeze``); it is the sandbox's state, freed by
    reference counting when it is forgotten."""
    while True:
        await asyncio.sleep(FREEZE_SECONDS)
        gc.freeze()


class SandboxApp:
    """ASGI callable. ``store`` defaults to the process's one state (with the demo accounts)."""

    def __init__(self, store: Store | None = None) -> None:
        self._store = store
        a = r"(?P<account>AC[0-9a-fA-F]{32})"
        sid = r"(?P<sid>[A-Z]{2}[0-9a-fA-F]{32})"
        v = f"/{API_VERSION}/Accounts"
        self.rest_routes: list[tuple[str, re.Pattern, Handler]] = [
            ("GET", re.compile(f"^{v}/{a}\\.json$"), self.fetch_account),
            ("GET", re.compile(f"^{v}/{a}/IncomingPhoneNumbers\\.json$"), self.list_numbers),
            ("GET", re.compile(f"^{v}/{a}/IncomingPhoneNumbers/{sid}\\.json$"), self.fetch_number),
            ("POST", re.compile(f"^{v}/{a}/IncomingPhoneNumbers/{sid}\\.json$"), self.update_number),
            ("POST", re.compile(f"^{v}/{a}/Messages\\.json$"), self.create_message),
            ("GET", re.compile(f"^{v}/{a}/Messages\\.json$"), self.list_messages),
            ("GET", re.compile(f"^{v}/{a}/Messages/{sid}\\.json$"), self.fetch_message),
            ("POST", re.compile(f"^{v}/{a}/Messages/{sid}\\.json$"), self.update_message),
            ("DELETE", re.compile(f"^{v}/{a}/Messages/{sid}\\.json$"), self.delete_message),
            (
                "GET",
                re.compile(f"^{v}/{a}/Messages/(?P<msg>(?:SM|MM)[0-9a-f]{{32}})/Media\\.json$"),
                self.list_media,
            ),
            (
                "GET",
                re.compile(
                    f"^{v}/{a}/Messages/(?P<msg>(?:SM|MM)[0-9a-f]{{32}})/Media/(?P<sid>ME[0-9a-f]{{32}})\\.json$"
                ),
                self.fetch_media,
            ),
            (
                "GET",
                re.compile(
                    f"^{v}/{a}/Messages/(?P<msg>(?:SM|MM)[0-9a-f]{{32}})/Media/(?P<sid>ME[0-9a-f]{{32}})$"
                ),
                self.media_content,
            ),
        ]
        from sandbox import control

        self.control_routes = control.routes(self)

    @property
    def store(self) -> Store:
        return self._store or get_store()

    # --- ASGI ---------------------------------------------------------------------------------
    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        body = bytearray()
        while True:
            event = await receive()
            if event["type"] == "http.disconnect":
                return
            body += event.get("body", b"")
            if len(body) > MAX_BODY:
                await self.send(send, json_response({"error": "request body too large"}, 413))
                return
            if not event.get("more_body"):
                break
        path = scope["path"]
        if path.startswith(PREFIX):
            path = path[len(PREFIX) :]
        host = headers.get("host") or "{}:{}".format(*scope.get("server") or ("127.0.0.1", 80))
        request = Request(
            method=scope["method"],
            path=path or "/",
            query=parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True),
            headers=headers,
            body=bytes(body),
            api_base=f"{scope.get('scheme', 'http')}://{host}{PREFIX}",
        )
        try:
            response = await self.dispatch(request)
        except TwilioError as exc:
            response = error_response(exc)
        except Exception:
            log.exception("sandbox: %s %s failed", request.method, request.path)
            response = error_response(TwilioError(500, 20500, "Internal Server Error"))
        await self.send(send, response)

    async def send(self, send, response: Response) -> None:
        headers = [(b"content-type", response.content_type.encode()), *response.headers]
        headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    async def lifespan(self, receive, send) -> None:
        """The standalone server's start and stop (``manage.py twilio_sandbox``; the product's embedded mount
        sends none)."""
        freezer = None
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                freezer = asyncio.get_running_loop().create_task(freeze_long_lived())
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                if freezer is not None:
                    freezer.cancel()
                await webhooks.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def dispatch(self, request: Request) -> Response:
        if request.path.startswith(f"/{API_VERSION}/"):
            return await self.dispatch_rest(request)
        for method, pattern, handler in self.control_routes:
            match = pattern.match(request.path)
            if match and method == request.method:
                request.params = match.groupdict()
                return await handler(request)
        return json_response({"error": f"no sandbox route {request.method} {request.path}"}, 404)

    async def dispatch_rest(self, request: Request) -> Response:
        for method, pattern, handler in self.rest_routes:
            match = pattern.match(request.path)
            if match and method == request.method:
                request.params = match.groupdict()
                account = self.authenticate(request)
                return await self.limited(account, request, handler)
        # Unknown resources still need credentials first, like Twilio.
        self.authenticate(request, check_path=False)
        raise TwilioError(404, 20404, path=request.path)

    def authenticate(self, request: Request, check_path: bool = True) -> Account:
        header = request.headers.get("authorization", "")
        user = password = ""
        if header[:6].lower() == "basic ":
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                pass
        account = self.store.accounts.get(user)
        if account is None or not secrets.compare_digest(account.auth_token.encode(), password.encode()):
            raise TwilioError(401, 20003)
        if check_path and request.params.get("account") != account.sid:
            raise TwilioError(401, 20003)
        return account

    async def limited(self, account: Account, request: Request, handler: Handler) -> Response:
        """Twilio's per-account concurrency limit: beyond it, 429 / 20429 and nothing is processed."""
        behaviour = account.behaviour
        if account.in_flight >= behaviour.concurrency_limit:
            raise TwilioError(429, 20429)
        account.in_flight += 1
        try:
            if behaviour.hold_requests:
                if account.release is None:
                    account.release = asyncio.Event()
                await account.release.wait()
            if behaviour.latency_ms:
                await asyncio.sleep(behaviour.latency_ms / 1000.0)
            request.account = account
            return await handler(request)
        finally:
            account.in_flight -= 1

    # --- REST handlers ---------------------------------------------------------------------------
    @staticmethod
    def account_of(request: Request) -> Account:
        assert request.account is not None
        return request.account

    async def fetch_account(self, request: Request) -> Response:
        return json_response(render_account(self.account_of(request)))

    def number_of(self, request: Request) -> Number:
        account = self.account_of(request)
        number = account.numbers.get(request.params["sid"])
        if number is None:
            raise TwilioError(404, 20404, path=request.path)
        return number

    async def list_numbers(self, request: Request) -> Response:
        account = self.account_of(request)
        numbers = list(account.numbers.values())
        phone = request.arg("PhoneNumber")
        if phone:
            numbers = [n for n in numbers if phone in n.phone_number]
        name = request.arg("FriendlyName")
        if name:
            numbers = [n for n in numbers if n.friendly_name == name]
        path = f"{account_uri(account.sid)}/IncomingPhoneNumbers.json"
        return json_response(page(request, numbers, "incoming_phone_numbers", render_number, path, False))

    async def fetch_number(self, request: Request) -> Response:
        return json_response(render_number(self.number_of(request)))

    async def update_number(self, request: Request) -> Response:
        number = self.number_of(request)
        form = dict(request.form())
        for param, attr in (
            ("SmsUrl", "sms_url"),
            ("SmsFallbackUrl", "sms_fallback_url"),
            ("StatusCallback", "status_callback"),
            ("FriendlyName", "friendly_name"),
        ):
            if param in form:
                value = form[param].strip()
                if attr.endswith("url") and value and not value.startswith(("http://", "https://")):
                    raise TwilioError(400, 21502, f"SmsUrl is not valid: {value}")
                setattr(number, attr, value)
        for param, attr in (("SmsMethod", "sms_method"), ("SmsFallbackMethod", "sms_fallback_method")):
            if param in form:
                value = form[param].upper()
                if value not in ("GET", "POST"):
                    raise TwilioError(400, 21505, f"{param} must be GET or POST")
                setattr(number, attr, value)
        number.date_updated = time.time()
        return json_response(render_number(number))

    async def create_message(self, request: Request) -> Response:
        account = self.account_of(request)
        form = request.form()
        values = dict(form)
        to = values.get("To", "").strip()
        from_ = values.get("From", "").strip()
        body = values.get("Body", "")
        media_urls = [v for k, v in form if k == "MediaUrl"]
        try:
            validity = int(values.get("ValidityPeriod", "36000"))
        except ValueError:
            validity = 0
        if not 1 <= validity <= 36000:
            raise TwilioError(400, 21609, "Invalid ValidityPeriod")
        callback = values.get("StatusCallback", "")
        if callback and not callback.startswith(("http://", "https://")):
            raise TwilioError(400, 21609, f"The StatusCallback URL {callback} is not a valid URL.")
        number = self.store.validate_outbound(
            account, to, from_, body, media_urls, values.get("MessagingServiceSid", "")
        )
        number_type = number.type if number is not None else "local"
        segments = 1 if media_urls else count_segments(body)
        start = lifecycle.reserve_handoff(account, from_, number_type, segments)
        message = self.store.create_outbound(account, to, from_, body, media_urls, callback, validity)
        lifecycle.start_outbound(self.store, account, message, start)
        return json_response(render_message(message), 201)

    async def list_messages(self, request: Request) -> Response:
        account = self.account_of(request)
        messages = filter_messages(request, list(reversed(account.messages.values())))
        path = f"{account_uri(account.sid)}/Messages.json"
        return json_response(page(request, messages, "messages", render_message, path, True))

    async def fetch_message(self, request: Request) -> Response:
        account = self.account_of(request)
        return json_response(render_message(self.store.find_message(account, request.params["sid"])))

    async def update_message(self, request: Request) -> Response:
        account = self.account_of(request)
        message = self.store.find_message(account, request.params["sid"])
        form = dict(request.form())
        if form.get("Status"):
            if form["Status"] != "canceled":
                raise TwilioError(400, 21218, "Invalid Status: only 'canceled' is supported")
            # Twilio cancels only scheduled messages; the sandbox also cancels one still in its sender queue.
            if message.status not in ("scheduled", "queued", "accepted") or message.date_sent is not None:
                raise TwilioError(400, 30409, "Message can not be canceled: it is already being sent")
            message.set_status("canceled")
        if "Body" in form:
            if form["Body"] != "":
                raise TwilioError(400, 21218, "Body can only be updated to an empty string (redaction)")
            if not message.final and message.status != "sent":
                raise TwilioError(400, 20009, "Cannot redact a message that is still being sent")
            message.body = ""
            message.date_updated = time.time()
        return json_response(render_message(message))

    async def delete_message(self, request: Request) -> Response:
        account = self.account_of(request)
        message = self.store.find_message(account, request.params["sid"])
        if not message.final and message.status != "sent":
            raise TwilioError(400, 20009, "Cannot delete a message that is still being sent")
        del account.messages[message.sid]
        return Response(204, b"", "text/plain")

    def media_of(self, request: Request) -> tuple[Message, Media]:
        account = self.account_of(request)
        message = self.store.find_message(account, request.params["msg"])
        for media in message.media:
            if media.sid == request.params.get("sid"):
                return message, media
        raise TwilioError(404, 20404, path=request.path)

    async def list_media(self, request: Request) -> Response:
        account = self.account_of(request)
        message = self.store.find_message(account, request.params["msg"])
        path = f"{account_uri(account.sid)}/Messages/{message.sid}/Media.json"
        return json_response(page(request, list(message.media), "media_list", render_media, path, False))

    async def fetch_media(self, request: Request) -> Response:
        return json_response(render_media(self.media_of(request)[1]))

    async def media_content(self, request: Request) -> Response:
        _message, media = self.media_of(request)
        if media.content is None:
            return Response(302, b"", "text/plain", [(b"location", media.url.encode())])
        return Response(200, media.content, media.content_type)


application = SandboxApp()
