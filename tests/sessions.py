"""A logged-in browser session made without the login page (WebSocket tests and bench/live_push.py)."""

from __future__ import annotations

from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore

from tenancy.middleware import SESSION_ORG_KEY


def session_cookie_for(user, org=None) -> str:
    """The ``sessionid`` cookie value of a session in which ``user`` is logged in (and, given ``org``, has
    chosen it as the current organization)."""
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    if org is not None:
        session[SESSION_ORG_KEY] = org.pk
    session.save()
    return session.session_key
