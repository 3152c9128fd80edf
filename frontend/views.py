"""Pages of the layout: the home page."""

from __future__ import annotations

from django.shortcuts import render

from messaging.landing import twilio_setup_redirect
from tenancy import invitations
from tenancy.decorators import member_required


@member_required
def home(request):
    invites = list(invitations.pending_invitations_for(request.user))
    # An admin without a verified Twilio account lands on the Twilio settings after login (unless an
    # invitation waits for an answer).
    landing = None if invites else twilio_setup_redirect(request)
    if landing is not None:
        return landing
    return render(request, "frontend/home.html", {"pending_invitations": invites})
