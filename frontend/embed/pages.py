"""The embed pages: the record widget without the app's chrome, for a CRM's frame (docs/embed.md).

The page itself carries no data: it is a shell that exchanges the launch token of its URL fragment (or, for
Salesforce Canvas, of the signed request it was posted) for an embed session, then mounts the widget. So it
answers anyone, framed only by the organization's CRM origins (``frame-ancestors``), uncached, and with no
Referer leaving it.
"""

from __future__ import annotations

import json

from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from frontend.embed import records
from frontend.embed.api import mint
from quicksend.errors import DomainError
from tenancy.embed import allowed_origins, settings_for
from tenancy.embed_signatures import verify_canvas_signed_request
from tenancy.models import Crm, Organization


def embed_headers(response, org: Organization | None):
    """Framing by exactly the organization's CRM origins (none: nobody), no cache, no Referer."""
    origins = allowed_origins(org)
    response._csp_replace = {"frame-ancestors": origins or ["'none'"]}
    if origins:
        response.xframe_options_exempt = True  # X-Frame-Options cannot name origins; CSP does
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    return response


def _shell(
    request, org: Organization, *, record_type="", external_id="", phone="", state="launch", launch=""
):
    context = {
        "org": org,
        "record_type": record_type,
        "external_id": external_id,
        "phone": phone,
        "state": state,
        "launch": launch,
        "origins_json": json.dumps(allowed_origins(org)),
    }
    return embed_headers(render(request, "frontend/embed/embed.html", context), org)


def public_by_design(view):
    """An embed page answers anyone (it holds no data until its token is exchanged): the isolation harness
    accepts its 200 as long as no organization's data is in it."""
    view.isolation_public = True
    return view


@public_by_design
@require_GET
def embed_record(request, org: str, record_type: str, external_id: str):
    found = get_object_or_404(Organization, slug=org)
    return _shell(request, found, record_type=record_type, external_id=external_id)


@public_by_design
@require_GET
def embed_phone(request, org: str, phone: str):
    found = get_object_or_404(Organization, slug=org)
    return _shell(request, found, phone=phone)


@public_by_design
@require_GET
def embed_unsaved(request, org: str, record_type: str):
    """A CRM page of a record not saved yet (no id): nothing to text until it is."""
    found = get_object_or_404(Organization, slug=org)
    return _shell(request, found, record_type=record_type, state="unsaved")


def _canvas_record(envelope: dict) -> tuple[str, str]:
    """The record a Canvas app is shown on: the parameters the admin set (``recordId``, ``recordType``),
    else the page layout's record."""
    environment = (envelope.get("context") or {}).get("environment") or {}
    parameters = environment.get("parameters") or {}
    record = environment.get("record") or {}
    record_id = parameters.get("recordId") or record.get("Id") or ""
    record_type = parameters.get("recordType") or (record.get("attributes") or {}).get("type") or "Lead"
    return str(record_type), str(record_id)


@public_by_design
@csrf_exempt  # Salesforce posts the signed request into the frame; its HMAC is the proof, not a cookie.
@require_POST
def salesforce_canvas(request, org: str):
    """A Salesforce Canvas app's page: the signed request is verified with the consumer secret, then a
    launch token is minted for its user and record and exchanged by the page like any other."""
    found = Organization.objects.filter(slug=org).first()
    if found is None:
        raise Http404("Not found.")
    try:
        envelope = verify_canvas_signed_request(
            request.POST.get("signed_request", ""),
            settings_for(found).get_secret("salesforce_consumer_secret"),
        )
        user = (envelope.get("context") or {}).get("user") or {}
        record_type, record_id = _canvas_record(envelope)
        data = {
            "crm_user_id": str(user.get("userId") or envelope.get("userId") or ""),
            "email": user.get("email") or "",
            "record_type": record_type,
            "external_id": record_id,
            "name": "",
        }
        launch = mint(found, Crm.SALESFORCE, data)
    except DomainError as refused:  # a page in the CRM's frame: the reason is shown there, not flashed
        response = render(
            request, "frontend/embed/refused.html", {"reason": refused.message}, status=refused.http_status
        )
        return embed_headers(response, found)
    rtype = records.record_type_for(Crm.SALESFORCE, record_type)
    return _shell(request, found, record_type=rtype, external_id=data["external_id"], launch=launch["token"])
