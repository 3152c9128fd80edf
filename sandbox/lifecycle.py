"""What happens after the REST answer: sender queues with rate limits, status changes with their signed
status callbacks, and the signed inbound webhook of a customer's text (with TwiML replies).

Everything runs as asyncio tasks on the serving loop; webhooks go out through sandbox.webhooks.
"""

from __future__ import annotations

import asyncio
import logging
import time
import xml.etree.ElementTree as ET

import phonenumbers

from sandbox.state import (
    API_VERSION,
    ASYNC_OUTCOMES,
    AUTO_REPLIES,
    MAX_QUEUE_SECONDS,
    Account,
    Message,
    Number,
    Store,
    TwilioError,
    opt_out_type,
)
from sandbox.webhooks import WebhookError, post_signed

log = logging.getLogger("quicksend.sandbox")


# --- outbound -------------------------------------------------------------------------------------
def reserve_handoff(account: Account, sender: str, number_type: str, segments: int) -> float:
    """Book the sender's next free slot (loop time) at its rate; 21611 when 10 h of queue are full.

    A sender never hands off more than ``rate`` segments per second: each message occupies
    ``segments / rate`` seconds of the sender's time line, starting when the previous one ends.
    """
    loop = asyncio.get_running_loop()
    now = loop.time()
    start = max(now, account.sender_free_at.get(sender, 0.0))
    if start - now > MAX_QUEUE_SECONDS:
        raise TwilioError(400, 21611)
    account.sender_free_at[sender] = start + segments / account.behaviour.rates[number_type]
    return start


_epoch_offsets: dict[int, float] = {}


def to_epoch(loop_time: float) -> float:
    """Loop (monotonic) time as epoch seconds, with one fixed offset per loop so differences stay exact."""
    loop = asyncio.get_running_loop()
    offset = _epoch_offsets.get(id(loop))
    if offset is None:
        offset = _epoch_offsets[id(loop)] = time.time() - loop.time()
    return loop_time + offset


def start_outbound(store: Store, account: Account, message: Message, start: float) -> None:
    message.handoff_at = to_epoch(start)
    message.task = asyncio.create_task(run_outbound(store, account, message, start))


def _delay(account: Account) -> float:
    low, high = account.behaviour.delay_ms
    return account.rng.uniform(low, high) / 1000.0


async def run_outbound(store: Store, account: Account, message: Message, start: float) -> None:
    loop = asyncio.get_running_loop()
    wait = start - loop.time()
    if wait > 0:
        await asyncio.sleep(wait)
    if message.status != "queued":  # canceled while queued
        return
    pending: list[tuple[str, int | None]] = []
    if time.time() - message.date_created > message.validity_period:
        message.set_status("failed", 30036)
        await _post_status(account, message, [("failed", 30036)])
        return
    message.date_sent = message.handoff_at
    outcome, code = ASYNC_OUTCOMES.get(message.to, ("delivered", None))
    steps: list[tuple[str, int | None]] = [("sending", None)]
    steps += [("failed", code)] if outcome == "failed" else [("sent", None), (outcome, code)]
    out_of_order = (
        account.behaviour.out_of_order > 0 and account.rng.random() < account.behaviour.out_of_order
    )
    for index, (status, error_code) in enumerate(steps):
        if index:
            await asyncio.sleep(_delay(account))
        message.set_status(status, error_code)
        if status == "delivered":
            store.phone_log(store.received, message.to).append(message)
        pending.append((status, error_code))
        # Out of order: hold the next-to-last callback back and post it after the final one.
        if out_of_order and index == len(steps) - 2:
            continue
        await _post_status(account, message, pending)
        pending = []


async def _post_status(account: Account, message: Message, events: list[tuple[str, int | None]]) -> None:
    if not message.status_callback:
        return
    # Held-back events go last: the final status arrives first, which is what "out of order" means.
    ordered = events[1:] + events[:1] if len(events) > 1 else events
    for status, error_code in ordered:
        if status not in account.behaviour.callback_statuses:
            continue
        params = {
            "SmsSid": message.sid,
            "SmsStatus": status,
            "MessageStatus": status,
            "To": message.to,
            "MessageSid": message.sid,
            "AccountSid": account.sid,
            "From": message.from_,
            "ApiVersion": API_VERSION,
        }
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        if status in ("delivered", "undelivered"):
            params["RawDlrDoneDate"] = time.strftime("%y%m%d%H%M", time.gmtime())
        times = (
            2 if account.behaviour.duplicates and account.rng.random() < account.behaviour.duplicates else 1
        )
        for attempt in range(times):
            record = {"status": status, "at": time.time(), "duplicate": attempt > 0, "http_status": None}
            try:
                record["http_status"], _text = await post_signed(
                    account.auth_token, message.status_callback, params
                )
            except WebhookError as exc:
                record["error"] = str(exc)
                log.debug("sandbox: status callback to %s failed: %s", message.status_callback, exc)
            message.callbacks.append(record)


# --- inbound --------------------------------------------------------------------------------------
def _geo(phone: str, prefix: str) -> dict[str, str]:
    country = ""
    try:
        country = phonenumbers.region_code_for_number(phonenumbers.parse(phone, None)) or ""
    except phonenumbers.NumberParseException:
        country = "US" if phone.isdigit() else ""
    return {f"{prefix}Country": country, f"{prefix}State": "", f"{prefix}City": "", f"{prefix}Zip": ""}


def inbound_params(message: Message, api_base: str) -> dict[str, str]:
    """The form Twilio posts to a number's SMS URL for an incoming message."""
    params = {
        **_geo(message.to, "To"),
        "SmsMessageSid": message.sid,
        "NumMedia": str(len(message.media)),
        **_geo(message.from_, "From"),
        "SmsSid": message.sid,
        "SmsStatus": "received",
        "Body": message.body,
        "To": message.to,
        "NumSegments": str(message.num_segments),
        "MessageSid": message.sid,
        "AccountSid": message.account_sid,
        "From": message.from_,
        "ApiVersion": API_VERSION,
    }
    for index, media in enumerate(message.media):
        params[f"MediaContentType{index}"] = media.content_type
        params[f"MediaUrl{index}"] = (
            f"{api_base}/{API_VERSION}/Accounts/{message.account_sid}/Messages/{message.sid}/Media/{media.sid}"
        )
    keyword = opt_out_type(message.body)
    if keyword:
        params["OptOutType"] = keyword
    return params


def twiml_replies(text: str) -> list[str]:
    """Bodies of the <Message> verbs of a TwiML answer (nothing for an empty or non-TwiML answer)."""
    try:
        root = ET.fromstring(text.strip())  # noqa: S314 - the webhook answer comes from the developer's own app
    except ET.ParseError:
        return []
    if root.tag != "Response":
        return []
    bodies = []
    for verb in root.iter("Message"):
        body = verb.find("Body")
        bodies.append(((body.text if body is not None else verb.text) or "").strip())
    return [b for b in bodies if b]


def send_reply(store: Store, number: Number, to: str, body: str) -> Message:
    """A message the sandbox number sends back (TwiML <Message> or an opt-out auto-reply)."""
    account = store.accounts[number.account_sid]
    start = reserve_handoff(account, number.phone_number, number.type, 1)
    message = store.create_outbound(account, to, number.phone_number, body, [], "", 36000, "outbound-reply")
    start_outbound(store, account, message, start)
    return message


async def deliver_inbound(store: Store, number: Number, message: Message, api_base: str) -> dict:
    """Post the inbound webhook (falling back to sms_fallback_url) and send what the TwiML asks for."""
    account = store.accounts[number.account_sid]
    keyword = opt_out_type(message.body)
    result: dict = {"url": number.sms_url or None, "status_code": None, "replies": []}
    if keyword:
        reply = send_reply(store, number, message.from_, AUTO_REPLIES[keyword])
        result["auto_reply"] = reply.sid
    if not number.sms_url:
        result["error"] = "the number has no sms_url"
        message.webhook = result
        return result
    params = inbound_params(message, api_base)
    text = ""
    for url, method in (
        (number.sms_url, number.sms_method),
        (number.sms_fallback_url, number.sms_fallback_method),
    ):
        if not url:
            continue
        result["url"] = url
        try:
            status, answer = await post_signed(account.auth_token, url, params, method)
            result["status_code"] = status
            result.pop("error", None)
            if status < 400:
                text = answer
                break
            result["error"] = f"HTTP {status}"
        except WebhookError as exc:
            result["error"] = str(exc)
    if text and message.from_ not in account.opted_out:
        for body in twiml_replies(text):
            result["replies"].append(send_reply(store, number, message.from_, body[:1600]).sid)
    message.webhook = result
    return result
