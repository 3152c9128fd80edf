"""API permissions: every endpoint needs a member of the resolved organization; admin actions need an
admin."""

from rest_framework import permissions


class IsOrgMember(permissions.BasePermission):
    message = "You are not a member of an organization."

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and getattr(request, "org", None))


class IsOrgAdmin(IsOrgMember):
    message = "Only an organization admin can do this."

    def has_permission(self, request, view):
        membership = getattr(request, "membership", None)
        return super().has_permission(request, view) and membership is not None and membership.is_admin


class IsOrgAdminOrReadOnly(IsOrgMember):
    message = "Only an organization admin can change this."

    def has_permission(self, request, view):
        if not super().has_permission(request, view):
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        return request.membership.is_admin
