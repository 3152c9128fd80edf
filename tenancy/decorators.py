"""View decorators for pages: a member of an organization, or an admin of it."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import render


def member_required(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if request.org is None:
            from tenancy.invitations import pending_invitations_for

            return render(
                request,
                "tenancy/no_organization.html",
                {"pending_invitations": pending_invitations_for(request.user)},
                status=403,
            )
        return view(request, *args, **kwargs)

    return wrapper


def admin_required(view):
    @wraps(view)
    @member_required
    def wrapper(request, *args, **kwargs):
        if not request.membership.is_admin:
            raise PermissionDenied("Only an organization admin can open this page.")
        return view(request, *args, **kwargs)

    return wrapper
