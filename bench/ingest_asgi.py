"""ASGI app for bench/ingest_webhooks.py only: the production application plus ``POST
/bench/lean-empty-twiml``, answered at the ASGI level with the webhooks' empty TwiML and no work at all (reads
the body, answers): the upper bound of the server itself. ``/bench/empty-twiml`` (bench/ingest_urls.py) is the
same answer from a trivial Django view."""

from quicksend.asgi import application as app  # first: sets Django up

from messaging.twilio.ingest import EMPTY_TWIML  # noqa: E402  isort: skip

_HEADERS = [(b"content-type", b"text/xml"), (b"content-length", str(len(EMPTY_TWIML)).encode())]


async def application(scope, receive, send):
    if scope["type"] != "http" or scope["path"] != "/bench/lean-empty-twiml":
        await app(scope, receive, send)
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": EMPTY_TWIML})
