"""The API as an embed session sees it: authenticated by its key, and default-deny by route.

An embed session authenticates with its partitioned cookie or, when the browser refused the cookie, with
``Authorization: Embed <key>`` from the page's memory. Either way the request must carry
``X-QuickSend-Embed: 1``: a header a cross-site page cannot add without a CORS preflight we never grant, which
is the CSRF defence of a SameSite=None cookie (and keeps the cookie from ever standing in for the app's own
login on a normal page).

Then the route decides: ``ROUTE_CHECKS`` maps a URL name to ``check(request, scope, kwargs) -> bool``, which
apps register for the routes the record widget calls (messaging: ``messaging.embed_scope``). A route without a
check, or whose check says no, is 404 to an embed session, so editing an id in the page reaches nothing else.
"""

from __future__ import annotations

from collections.abc import Callable

from rest_framework import authentication, exceptions

from tenancy.embed import COOKIE_NAME, EmbedScope, live_session, scope_of

HEADER = "HTTP_X_QUICKSEND_EMBED"
KEYWORD = "Embed"

ROUTE_CHECKS: dict[str, Callable[[object, EmbedScope, dict], bool]] = {}


def embed_key(request) -> str | None:
    """The embed session key a request presents (bearer first, then the cookie), or None: only requests
    that say they come from the embed page (the header) are considered."""
    meta = request.META
    if meta.get(HEADER) != "1":
        # An attachment shown by <img>/<a> cannot carry the header; a GET of one only reads (no CSRF risk).
        match = request.resolver_match
        if request.method == "GET" and match is not None and match.url_name == "message-media":
            return request.COOKIES.get(COOKIE_NAME)
        return None
    auth = meta.get("HTTP_AUTHORIZATION", "")
    if auth.startswith(f"{KEYWORD} "):
        return auth[len(KEYWORD) + 1 :].strip()
    return request.COOKIES.get(COOKIE_NAME)


class EmbedSessionAuthentication(authentication.BaseAuthentication):
    """DRF authentication of embed sessions (listed before the session authentication)."""

    def authenticate(self, request):
        key = embed_key(request._request)
        if key is None:
            return None
        found = live_session(key)
        if found is None:
            raise exceptions.AuthenticationFailed("This QuickSend panel has expired. Open the record again.")
        session, membership = found
        scope = scope_of(session)
        django_request = request._request
        match = django_request.resolver_match
        check = ROUTE_CHECKS.get(match.url_name if match else "")
        django_request.org = membership.organization
        django_request.membership = membership
        django_request.embed_scope = scope
        if check is None or not check(request, scope, match.kwargs):
            raise exceptions.NotFound("Not found.")
        return session.user, session

    def authenticate_header(self, request):
        return KEYWORD


class EmbedResponseMiddleware:
    """Answers to the embed page's API calls are neither cached nor followed by a Referer."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if hasattr(request, "embed_scope") or request.path.startswith("/api/v1/embed/"):
            response["Cache-Control"] = "no-store"
            response["Referrer-Policy"] = "no-referrer"
        return response
