"""The webhooks Twilio calls: ``POST /api/incoming-sms`` (a customer texted one of our numbers) and
``POST /api/status-callback`` (a message's delivery status changed).

Both: no CSRF (Twilio cannot send a token; the signature is the authentication), no trailing-slash redirect
(a redirect breaks the signature), the account and organization found from ``AccountSid`` and the signature
checked with that account's token (``messaging.twilio.signatures``). Anything unverifiable gets 403 and
changes nothing. Verified requests are stored and answered with empty TwiML at once; the rest runs in tasks.

The work is ``messaging.twilio.ingest.handle_webhook``. These Django views serve it to the test client and
to any server that runs Django alone; the production ASGI application answers the same two paths with
``messaging.twilio.webhook_asgi`` (the same function, without Django's per-request machinery).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from messaging.twilio.ingest import EMPTY_TWIML, handle_webhook


def twiml_ok() -> HttpResponse:
    return HttpResponse(EMPTY_TWIML, content_type="text/xml")


def _serve(kind: str, request: HttpRequest) -> HttpResponse:
    answer = handle_webhook(
        kind,
        request.path,
        request.META.get("QUERY_STRING", ""),
        request.POST,
        request.headers.get("X-Twilio-Signature", ""),
    )
    return HttpResponse(answer.body, status=answer.status, content_type=answer.content_type)


@csrf_exempt
@require_POST
def incoming_sms(request: HttpRequest) -> HttpResponse:
    """A customer's text: verify, store the raw event (unique on MessageSid), acknowledge."""
    return _serve("inbound", request)


@csrf_exempt
@require_POST
def status_callback(request: HttpRequest) -> HttpResponse:
    """A delivery status: verify, store it, acknowledge; a drain task moves the message forward."""
    return _serve("status", request)
