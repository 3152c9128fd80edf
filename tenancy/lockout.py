"""The page a locked-out login gets (django-axes calls ``locked_out``)."""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import render


def locked_out(request, original_response=None, credentials=None):
    """429 with the policy in plain words. The same words whether the username or the address is locked, so
    the page tells a guesser nothing about which accounts exist."""
    minutes = max(1, int(settings.AXES_COOLOFF_TIME.total_seconds() // 60))
    return render(
        request,
        "registration/locked_out.html",
        {"minutes": minutes, "failure_limit": settings.AXES_FAILURE_LIMIT},
        status=429,
    )
