"""The customer phone page (``/sandbox/phone/``): a developer picks a customer number, texts a sandbox
number (with attachments) and sees the replies. Plain HTML plus one static script (the CSP forbids inline
scripts); it talks to the control API, so it works both mounted in the app and standalone.
"""

from __future__ import annotations

import re
from pathlib import Path

from sandbox.http import PREFIX, Request, Response

STATIC = Path(__file__).parent / "static" / "sandbox"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: https: http:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Customer phone · QuickSend sandbox</title>
<link rel="stylesheet" href="{base}/phone/phone.css">
<script src="{base}/phone/phone.js" defer></script>
</head>
<body data-base="{base}">
<main class="phone-page">
  <h1>Customer phone <small>QuickSend Twilio sandbox</small></h1>
  <p class="hint">Pretend to be a customer: pick a phone number, text one of the sandbox numbers, and see what
  it sends back. Texts go to the number's SMS URL as a signed Twilio webhook.</p>
  <form id="phone-form" class="phone-form">
    <label>Customer number
      <input id="customer" name="customer" list="known-phones" required placeholder="+14155550123"
             value="+14155550123" pattern="\\+[1-9][0-9]{{6,14}}" autocomplete="off">
      <datalist id="known-phones"></datalist>
    </label>
    <label>Sandbox number
      <select id="sandbox-number" name="to" required></select>
    </label>
    <div class="thread" id="thread" aria-live="polite"></div>
    <label class="compose">Message
      <textarea id="body" name="body" rows="3" placeholder="Type a text… (STOP, START and HELP work like
at Twilio)"></textarea>
    </label>
    <label>Attachments <input id="media" name="media" type="file" multiple></label>
    <div class="actions">
      <button type="submit" id="send">Send</button>
      <span id="status" class="status" role="status"></span>
    </div>
  </form>
</main>
</body>
</html>
"""


def routes() -> list:
    async def page(request: Request) -> Response:
        html = PAGE.format(base=PREFIX)
        return Response(
            200,
            html.encode(),
            "text/html; charset=utf-8",
            [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff")],
        )

    async def redirect(request: Request) -> Response:
        return Response(301, b"", "text/plain", [(b"location", b"/sandbox/phone/")])

    def static(name: str, content_type: str):
        async def serve(request: Request) -> Response:
            return Response(
                200,
                (STATIC / name).read_bytes(),
                content_type,
                [(b"cache-control", b"no-cache"), (b"x-content-type-options", b"nosniff")],
            )

        return serve

    return [
        ("GET", re.compile(r"^/phone/?$"), page),
        ("GET", re.compile(r"^/?$"), redirect),
        ("GET", re.compile(r"^/phone/phone\.js$"), static("phone.js", "text/javascript; charset=utf-8")),
        ("GET", re.compile(r"^/phone/phone\.css$"), static("phone.css", "text/css; charset=utf-8")),
    ]
