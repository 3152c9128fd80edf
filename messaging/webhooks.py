"""The webhooks Twilio calls: ``POST /api/incoming-sms`` (a customer texted one of our numbers) and
``POST /api/status-callback`` (a message's delivery status changed).

Both: no CSRF (Twilio cannot send a token; the signature is the authentication), no trailing-slash redirect
(a redirect breaks the signature), the account and organization found from ``AccountSid`` and the signature
checked with that account's token (``messaging.signatures``). Anything unverifiable gets 403 and changes
nothing. Verified requests are stored and answered with empty TwiML at once; the rest runs in tasks.
"""

from __future__ import annotations

import re

from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from messaging.services import receiving
from messaging.signatures import verify_request

EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response />'
MESSAGE_SID_RE = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")


def twiml_ok() -> HttpResponse:
    return HttpResponse(EMPTY_TWIML, content_type="text/xml")


def _forbidden() -> HttpResponse:
    return HttpResponseForbidden(b"Forbidden", content_type="text/plain")


@csrf_exempt
@require_POST
def incoming_sms(request: HttpRequest) -> HttpResponse:
    """A customer's text: verify, store the raw event (unique on MessageSid), acknowledge."""
    account = verify_request(request)
    if account is None:
        return _forbidden()
    form = request.POST.dict()
    if not MESSAGE_SID_RE.match(form.get("MessageSid", "")) or not form.get("From") or not form.get("To"):
        return _forbidden()
    if receiving.store_inbound_event(account, form) is None:
        return _forbidden()  # the account was removed a moment ago (its token was still cached)
    return twiml_ok()


@csrf_exempt
@require_POST
def status_callback(request: HttpRequest) -> HttpResponse:
    """A delivery status: move the message forward (our id is the ``m`` query parameter), acknowledge."""
    account = verify_request(request)
    if account is None:
        return _forbidden()
    sid = request.POST.get("MessageSid", "")
    status = request.POST.get("MessageStatus") or request.POST.get("SmsStatus", "")
    if not MESSAGE_SID_RE.match(sid) or not status:
        return _forbidden()
    raw_id = request.GET.get("m", "")
    message_id = int(raw_id) if raw_id.isdigit() and len(raw_id) < 19 else None
    raw_code = request.POST.get("ErrorCode", "")
    error_code = int(raw_code) if raw_code.isdigit() and len(raw_code) < 9 else None
    receiving.receive_status_callback(account, message_id, sid, status.strip().lower(), error_code)
    return twiml_ok()
