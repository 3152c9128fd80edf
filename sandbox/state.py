"""In-memory state of the sandbox: accounts, numbers, messages, media, opt-outs and per-account behaviour.

All of it lives in the serving process and is touched only from its asyncio event loop (request handlers do
not await between reading and writing it), which is what makes it safe under concurrent requests without
locks. It is a sandbox: a restart forgets everything except the demo accounts, which are recreated.
"""

from __future__ import annotations

import asyncio
import random
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sandbox import demo
from sandbox.segments import count_segments

API_VERSION = "2010-04-01"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
SHORT_CODE = re.compile(r"^\d{3,8}$")
ACCOUNT_SID = re.compile(r"^AC[0-9a-f]{32}$")
NUMBER_TYPES = ("local", "tollfree", "shortcode")
DEFAULT_RATES = {"local": 1.0, "tollfree": 3.0, "shortcode": 100.0}
MAX_QUEUE_SECONDS = 10 * 3600  # Twilio queues up to 10 h of segments per sender, then 21611.
# Memory bounds for long runs and benchmarks: the oldest finished messages of an account are forgotten
# beyond this many, and a customer phone keeps its latest texts only.
MAX_MESSAGES_PER_ACCOUNT = 100_000
PHONE_HISTORY = 500

# Twilio's magic test numbers (FACTS.md), honoured for every account.
MAGIC_FROM_ERRORS = {"+15005550001": 21212, "+15005550007": 21606, "+15005550008": 21611}
MAGIC_FROM_VALID = "+15005550006"
MAGIC_TO_ERRORS = {
    "+15005550001": 21211,
    "+15005550002": 21612,
    "+15005550003": 21408,
    "+15005550004": 21610,
    "+15005550009": 21614,
}
# Designated recipients whose messages end badly, asynchronously (documented in docs/sandbox.md):
# +1500555300N ends with error 3000N.
ASYNC_OUTCOMES = {
    "+15005553003": ("undelivered", 30003),
    "+15005553004": ("undelivered", 30004),
    "+15005553005": ("undelivered", 30005),
    "+15005553006": ("undelivered", 30006),
    "+15005553007": ("failed", 30007),
    "+15005553008": ("failed", 30008),
}

ERROR_MESSAGES = {
    10001: "Account is not active",
    20003: "Authenticate",
    20404: "The requested resource {path} was not found",
    20429: "Too Many Requests",
    21211: "The 'To' number {to} is not a valid phone number.",
    21212: "The 'From' number {from_} is not a valid phone number, shortcode, or alphanumeric sender ID.",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: "
    "{to}.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21606: "The 'From' phone number provided ({from_}) is not a valid message-capable Twilio phone number "
    "for this destination/account.",
    21610: "Attempt to send to unsubscribed recipient",
    21611: "This 'From' number has exceeded the maximum number of queued messages",
    21612: "The 'To' phone number: {to}, is not currently reachable using the 'From' phone number: {from_} "
    "via SMS.",
    21614: "'To' number {to} is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21623: "Number of media files exceeds allowed limit.",
    21620: "Invalid media URL(s).",
    30003: "Unreachable destination handset",
    30004: "Message blocked",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
    30036: "Validity Period Expired",
}

OPT_OUT = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
OPT_IN = {"START", "YES", "UNSTOP"}
HELP = {"HELP", "INFO"}
AUTO_REPLIES = {
    "STOP": "You have successfully been unsubscribed. You will not receive any more messages from this "
    "number. Reply START to resubscribe.",
    "START": "You have successfully been re-subscribed to messages from this number. Reply HELP for help. "
    "Reply STOP to unsubscribe. Msg&Data Rates May Apply.",
    "HELP": "Reply STOP to unsubscribe. Msg&Data Rates May Apply.",
}


class TwilioError(Exception):
    """An error answered the way Twilio does: HTTP status and ``{code, message, more_info, status}``."""

    def __init__(self, status: int, code: int, message: str | None = None, **fmt: str):
        self.status = status
        self.code = code
        self.message = message or ERROR_MESSAGES.get(code, "Error").format(**fmt)
        super().__init__(self.message)

    def body(self) -> dict:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def rfc2822(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(ts))


def opt_out_type(body: str) -> str | None:
    """STOP / START / HELP when the whole message (trimmed, any case) is a keyword of that family."""
    word = (body or "").strip().upper()
    if word in OPT_OUT:
        return "STOP"
    if word in OPT_IN:
        return "START"
    if word in HELP:
        return "HELP"
    return None


@dataclass
class Behaviour:
    """How an account's messages behave; every field can be changed through the control API."""

    rates: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_RATES))
    delay_ms: tuple[float, float] = (5.0, 40.0)  # between two status changes of a message
    out_of_order: float = 0.0  # probability that a message's callbacks are posted out of order
    duplicates: float = 0.0  # probability that each callback is posted twice
    concurrency_limit: int = 100  # concurrent REST requests per account, beyond which 429 / 20429
    latency_ms: float = 0.0  # added to every REST request of the account (makes concurrency real)
    hold_requests: bool = False  # park REST requests until released (deterministic 429 tests)
    callback_statuses: tuple[str, ...] = ("sending", "sent", "delivered", "undelivered", "failed")
    seed: int | None = None

    def as_dict(self) -> dict:
        return {
            "rates": dict(self.rates),
            "delay_ms": list(self.delay_ms),
            "out_of_order": self.out_of_order,
            "duplicates": self.duplicates,
            "concurrency_limit": self.concurrency_limit,
            "latency_ms": self.latency_ms,
            "hold_requests": self.hold_requests,
            "callback_statuses": list(self.callback_statuses),
            "seed": self.seed,
        }

    def update(self, data: dict) -> None:
        unknown = set(data) - set(self.as_dict())
        if unknown:
            raise ValueError(f"unknown behaviour field(s): {', '.join(sorted(unknown))}")
        if "rates" in data:
            for kind, rate in data["rates"].items():
                if kind not in NUMBER_TYPES or float(rate) <= 0:
                    raise ValueError(f"bad rate {kind}={rate}")
                self.rates[kind] = float(rate)
        if "delay_ms" in data:
            low, high = (float(x) for x in data["delay_ms"])
            if low < 0 or high < low:
                raise ValueError("delay_ms must be [min, max] with 0 <= min <= max")
            self.delay_ms = (low, high)
        for name in ("out_of_order", "duplicates"):
            if name in data:
                value = float(data[name])
                if not 0 <= value <= 1:
                    raise ValueError(f"{name} is a probability between 0 and 1")
                setattr(self, name, value)
        if "concurrency_limit" in data:
            self.concurrency_limit = max(1, int(data["concurrency_limit"]))
        if "latency_ms" in data:
            self.latency_ms = max(0.0, float(data["latency_ms"]))
        if "hold_requests" in data:
            self.hold_requests = bool(data["hold_requests"])
        if "callback_statuses" in data:
            self.callback_statuses = tuple(data["callback_statuses"])
        if "seed" in data:
            self.seed = None if data["seed"] is None else int(data["seed"])


@dataclass
class Number:
    sid: str
    account_sid: str
    phone_number: str
    type: str
    friendly_name: str
    capabilities: dict[str, bool]
    seq: int = 0
    sms_url: str = ""
    sms_method: str = "POST"
    sms_fallback_url: str = ""
    sms_fallback_method: str = "POST"
    status_callback: str = ""
    date_created: float = field(default_factory=time.time)
    date_updated: float = field(default_factory=time.time)


@dataclass
class Media:
    sid: str
    account_sid: str
    parent_sid: str
    content_type: str
    content: bytes | None = None  # stored for inbound media; outbound media is only a URL
    url: str = ""
    seq: int = 0  # position in its message, for paging
    date_created: float = field(default_factory=time.time)


@dataclass
class Message:
    sid: str
    account_sid: str
    seq: int
    direction: str
    from_: str
    to: str
    body: str
    status: str
    num_segments: int
    media: list[Media] = field(default_factory=list)
    status_callback: str = ""
    validity_period: int = 36000
    error_code: int | None = None
    date_created: float = field(default_factory=time.time)
    date_updated: float = field(default_factory=time.time)
    date_sent: float | None = None
    # Sandbox-only facts (control API): when the sender's queue handed it to the "carrier", its status
    # history, the callbacks posted, and for inbound messages the webhook result.
    handoff_at: float | None = None
    history: list[tuple[str, float]] = field(default_factory=list)
    callbacks: list[dict] = field(default_factory=list)
    webhook: dict | None = None
    task: Any = None

    @property
    def final(self) -> bool:
        return self.status in {"delivered", "undelivered", "failed", "canceled", "received"}

    def set_status(self, status: str, error_code: int | None = None) -> None:
        now = time.time()
        self.status = status
        self.date_updated = now
        if error_code is not None:
            self.error_code = error_code
        self.history.append((status, now))


@dataclass
class Account:
    sid: str
    auth_token: str
    friendly_name: str
    status: str = "active"
    type: str = "Full"
    date_created: float = field(default_factory=time.time)
    date_updated: float = field(default_factory=time.time)
    behaviour: Behaviour = field(default_factory=Behaviour)
    numbers: dict[str, Number] = field(default_factory=dict)  # by PN sid, in creation order
    messages: dict[str, Message] = field(default_factory=dict)  # by sid, in creation order
    opted_out: set[str] = field(default_factory=set)
    in_flight: int = 0
    release: asyncio.Event | None = None
    sender_free_at: dict[str, float] = field(default_factory=dict)  # sender → loop time it is free
    rng: random.Random = field(default_factory=random.Random)


class Store:
    """Every account of one sandbox process, plus the index of numbers and customer phones."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        for account in getattr(self, "accounts", {}).values():
            for message in account.messages.values():
                if message.task is not None:
                    message.task.cancel()
        self.accounts: dict[str, Account] = {}
        self.by_number: dict[str, Number] = {}
        self.received: dict[str, deque[Message]] = {}  # customer phone → messages delivered to it
        self.sent_by_customer: dict[str, deque[Message]] = {}  # customer phone → its inbound messages
        self.media: dict[str, Media] = {}
        self.seq = 0
        # Where the demo numbers' texts go ("A message comes in"): empty for a standalone sandbox; the app
        # that mounts the sandbox points them at itself (``point_demo_numbers``).
        self.demo_sms_url = ""
        self.reset_demo()

    def point_demo_numbers(self, sms_url: str) -> None:
        """Make the demo numbers post incoming texts to ``sms_url`` (now and after every ``reset_demo``),
        unless a number was already pointed elsewhere."""
        self.demo_sms_url = sms_url
        for spec in demo.DEMO_ACCOUNTS:
            account = self.accounts.get(spec["sid"])
            for number in account.numbers.values() if account else ():
                if not number.sms_url:
                    number.sms_url, number.sms_method = sms_url, "POST"

    def reset_demo(self) -> None:
        """Put the demo accounts back as they start (numbers pointed at ``demo_sms_url``, which is empty for a
        standalone sandbox; no messages, no opt-outs)."""
        for spec in demo.DEMO_ACCOUNTS:
            old = self.accounts.pop(spec["sid"], None)
            if old is not None:
                for message in old.messages.values():
                    if message.task is not None:
                        message.task.cancel()
                    for media in message.media:
                        self.media.pop(media.sid, None)
                for number in old.numbers.values():
                    self.by_number.pop(number.phone_number, None)
            account = self.create_account(
                spec["friendly_name"], spec["status"], sid=spec["sid"], auth_token=spec["auth_token"]
            )
            for number in spec["numbers"]:
                self.add_number(account.sid, **number, sms_url=self.demo_sms_url)

    # --- accounts and numbers ---------------------------------------------------------------------
    def create_account(
        self,
        friendly_name: str = "Sandbox account",
        status: str = "active",
        sid: str | None = None,
        auth_token: str | None = None,
    ) -> Account:
        if status not in ("active", "suspended", "closed"):
            raise ValueError("status must be active, suspended or closed")
        sid = sid or new_sid("AC")
        if not ACCOUNT_SID.match(sid):
            raise ValueError("sid must be AC + 32 lowercase hex digits")
        if sid in self.accounts:
            raise ValueError(f"account {sid} exists")
        account = Account(sid, auth_token or secrets.token_hex(16), friendly_name, status)
        self.accounts[sid] = account
        return account

    def add_number(
        self,
        account_sid: str,
        phone_number: str,
        type: str = "local",  # noqa: A002 - the control API's field name
        friendly_name: str = "",
        sms: bool = True,
        mms: bool = True,
        voice: bool = True,
        sms_url: str = "",
        sms_method: str = "POST",
    ) -> Number:
        account = self.accounts[account_sid]
        if type not in NUMBER_TYPES:
            raise ValueError("type must be local, tollfree or shortcode")
        if type == "shortcode":
            if not SHORT_CODE.match(phone_number):
                raise ValueError("a short code is 3 to 8 digits")
        elif not E164.match(phone_number):
            raise ValueError("phone_number must be E.164 (+14155550100)")
        if phone_number in self.by_number:
            raise ValueError(f"{phone_number} already belongs to a sandbox account")
        number = Number(
            sid=new_sid("PN"),
            account_sid=account_sid,
            phone_number=phone_number,
            type=type,
            friendly_name=friendly_name or phone_number,
            capabilities={"voice": bool(voice), "sms": bool(sms), "mms": bool(mms), "fax": False},
            seq=self.next_seq(),
            sms_url=sms_url,
            sms_method=sms_method.upper(),
        )
        account.numbers[number.sid] = number
        self.by_number[phone_number] = number
        return number

    def remove_number(self, account_sid: str, number_sid: str) -> None:
        number = self.accounts[account_sid].numbers.pop(number_sid)
        self.by_number.pop(number.phone_number, None)

    # --- messages ---------------------------------------------------------------------------------
    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def validate_outbound(
        self, account: Account, to: str, from_: str, body: str, media_urls: list[str], service: str
    ) -> Number | None:
        """Twilio's synchronous checks, in its order; raises TwilioError, returns the sending number."""
        if account.status != "active":
            raise TwilioError(401, 10001)
        if not to:
            raise TwilioError(400, 21604)
        if not from_:
            if service:
                raise TwilioError(400, 21606, "Messaging Services are not supported by the sandbox.")
            raise TwilioError(400, 21603)
        if not body and not media_urls:
            raise TwilioError(400, 21602)
        if len(body) > 1600:
            raise TwilioError(400, 21617)
        if len(media_urls) > 10:
            raise TwilioError(400, 21623)
        if any(not url.startswith(("http://", "https://")) for url in media_urls):
            raise TwilioError(400, 21620)
        if from_ in MAGIC_FROM_ERRORS:
            raise TwilioError(400, MAGIC_FROM_ERRORS[from_], to=to, from_=from_)
        if to in MAGIC_TO_ERRORS:
            raise TwilioError(400, MAGIC_TO_ERRORS[to], to=to, from_=from_)
        if not E164.match(from_) and not SHORT_CODE.match(from_):
            raise TwilioError(400, 21212, from_=from_)
        if not E164.match(to):
            raise TwilioError(400, 21211, to=to)
        number = self.by_number.get(from_)
        if from_ == MAGIC_FROM_VALID:
            number = None
        elif number is None or number.account_sid != account.sid or not number.capabilities["sms"]:
            raise TwilioError(400, 21606, from_=from_)
        elif media_urls and not number.capabilities["mms"]:
            raise TwilioError(400, 21606, from_=from_)
        if to in account.opted_out:
            raise TwilioError(400, 21610)
        return number

    def create_outbound(
        self,
        account: Account,
        to: str,
        from_: str,
        body: str,
        media_urls: list[str],
        status_callback: str,
        validity_period: int,
        direction: str = "outbound-api",
    ) -> Message:
        message = Message(
            sid=new_sid("MM" if media_urls else "SM"),
            account_sid=account.sid,
            seq=self.next_seq(),
            direction=direction,
            from_=from_,
            to=to,
            body=body,
            status="queued",
            num_segments=count_segments(body),
            status_callback=status_callback,
            validity_period=validity_period,
        )
        message.history.append(("queued", message.date_created))
        for index, url in enumerate(media_urls):
            media = Media(
                new_sid("ME"), account.sid, message.sid, guess_content_type(url), url=url, seq=index + 1
            )
            message.media.append(media)
            self.media[media.sid] = media
        self.remember(account, message)
        return message

    def create_inbound(
        self, number: Number, from_: str, body: str, media: list[tuple[str, bytes]]
    ) -> Message:
        account = self.accounts[number.account_sid]
        message = Message(
            sid=new_sid("MM" if media else "SM"),
            account_sid=account.sid,
            seq=self.next_seq(),
            direction="inbound",
            from_=from_,
            to=number.phone_number,
            body=body,
            status="received",
            num_segments=count_segments(body),
        )
        message.date_sent = message.date_created
        message.history.append(("received", message.date_created))
        for index, (content_type, content) in enumerate(media):
            item = Media(
                new_sid("ME"), account.sid, message.sid, content_type, content=content, seq=index + 1
            )
            message.media.append(item)
            self.media[item.sid] = item
        self.remember(account, message)
        self.phone_log(self.sent_by_customer, from_).append(message)
        keyword = opt_out_type(body)
        if keyword == "STOP":
            account.opted_out.add(from_)
        elif keyword == "START":
            account.opted_out.discard(from_)
        return message

    @staticmethod
    def phone_log(logs: dict[str, deque[Message]], phone: str) -> deque[Message]:
        log = logs.get(phone)
        if log is None:
            log = logs[phone] = deque(maxlen=PHONE_HISTORY)
        return log

    def remember(self, account: Account, message: Message) -> None:
        account.messages[message.sid] = message
        while len(account.messages) > MAX_MESSAGES_PER_ACCOUNT:
            oldest = account.messages[next(iter(account.messages))]
            if not oldest.final:
                break  # still in flight: keep it (the bound is soft)
            del account.messages[oldest.sid]
            for media in oldest.media:
                self.media.pop(media.sid, None)

    def find_message(self, account: Account, sid: str) -> Message:
        message = account.messages.get(sid)
        if message is None:
            raise TwilioError(404, 20404, path=f"/{API_VERSION}/Accounts/{account.sid}/Messages/{sid}.json")
        return message


def guess_content_type(url: str) -> str:
    path = url.split("?", 1)[0].lower()
    for ext, content_type in (
        (".jpg", "image/jpeg"),
        (".jpeg", "image/jpeg"),
        (".png", "image/png"),
        (".gif", "image/gif"),
        (".pdf", "application/pdf"),
        (".txt", "text/plain"),
        (".vcf", "text/vcard"),
    ):
        if path.endswith(ext):
            return content_type
    return "application/octet-stream"


_store: Store | None = None


def get_store() -> Store:
    """The process's one sandbox state (created on first use, with the demo accounts)."""
    global _store
    if _store is None:
        _store = Store()
    return _store
