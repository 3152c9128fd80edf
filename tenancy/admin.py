"""Django admin for support staff. Only superusers may use it (it spans organizations)."""

from django.contrib import admin

from tenancy.models import ApiToken, AuditLog, Membership, Organization, Team


class SuperuserOnlyAdmin(admin.ModelAdmin):
    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    has_change_permission = has_view_permission
    has_add_permission = has_module_permission
    has_delete_permission = has_view_permission


@admin.register(Organization)
class OrganizationAdmin(SuperuserOnlyAdmin):
    list_display = ("name", "slug", "seat_limit", "time_zone", "created_at")
    search_fields = ("name", "slug")


@admin.register(Membership)
class MembershipAdmin(SuperuserOnlyAdmin):
    list_display = ("user", "organization", "role", "is_active")
    list_filter = ("role", "is_active", "organization")


@admin.register(Team)
class TeamAdmin(SuperuserOnlyAdmin):
    list_display = ("name", "organization")
    list_filter = ("organization",)


@admin.register(ApiToken)
class ApiTokenAdmin(SuperuserOnlyAdmin):
    list_display = ("name", "user", "organization", "prefix", "created_at", "revoked_at")
    exclude = ("key_hash",)
    readonly_fields = ("prefix",)


@admin.register(AuditLog)
class AuditLogAdmin(SuperuserOnlyAdmin):
    list_display = ("created_at", "organization", "actor", "action", "object_type", "object_id")
    list_filter = ("organization", "action")

    def has_change_permission(self, request, obj=None):
        return False
