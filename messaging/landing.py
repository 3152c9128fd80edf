"""Where a member lands after logging in: an admin whose organization has no verified Twilio account goes to
the Twilio settings page; agents see a notice on the home page instead."""

from __future__ import annotations

import time

from django.http import HttpResponseRedirect
from django.urls import reverse

from messaging.access import org_has_verified_twilio

SESSION_FLAG = "messaging.just_logged_in"
# The home page counts as "the landing after login" only this soon after logging in (a login that went to
# ?next=… must not redirect a much later visit to home).
LANDING_WINDOW_SECONDS = 120


def remember_fresh_login(sender, request, user, **kwargs) -> None:
    """``user_logged_in`` receiver: the next home-page visit is the landing after login."""
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_FLAG] = time.time()


def twilio_setup_redirect(request) -> HttpResponseRedirect | None:
    """Called by the home view: send a freshly logged-in admin to the Twilio settings when nothing is
    connected yet. Later visits to home are left alone."""
    logged_in_at = request.session.pop(SESSION_FLAG, None)
    fresh = isinstance(logged_in_at, float) and time.time() - logged_in_at < LANDING_WINDOW_SECONDS
    if fresh and request.membership is not None and request.membership.is_admin:
        if not org_has_verified_twilio(request.org):
            return HttpResponseRedirect(reverse("settings-twilio"))
    return None
