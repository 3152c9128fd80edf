"""Resolves the tenant once per request: ``request.org`` and ``request.membership``; pages render their times
in the organization's time zone."""

from __future__ import annotations

import zoneinfo

from django.utils import timezone

from tenancy.models import Membership

SESSION_ORG_KEY = "org_id"


def resolve_membership(user, wanted_org_id) -> Membership | None:
    if not user.is_authenticated:
        return None
    memberships = Membership.objects.select_related("organization").filter(user=user, is_active=True)
    if wanted_org_id is not None:
        # (user, organization) is unique: a plain LIMIT 1, no ORDER BY (this runs on every request).
        chosen = next(iter(memberships.filter(organization_id=wanted_org_id)[:1]), None)
        if chosen is not None:
            return chosen
    return memberships.order_by("organization__name").first()


class TenantMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.org = None
        request.membership = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            membership = resolve_membership(user, request.session.get(SESSION_ORG_KEY))
            if membership is not None:
                request.membership = membership
                request.org = membership.organization
                if request.session.get(SESSION_ORG_KEY) != membership.organization_id:
                    request.session[SESSION_ORG_KEY] = membership.organization_id
        # Pages show times in the organization's zone ({{ when|date }}); the API keeps answering in UTC.
        if request.org is None or request.path.startswith("/api/"):
            return self.get_response(request)
        timezone.activate(zoneinfo.ZoneInfo(request.org.time_zone))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
