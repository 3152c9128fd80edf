"""Django admin for support staff. Only superusers may use it (it spans organizations)."""

from django.contrib import admin

from tenancy.models import ApiToken, AuditLog, Invitation, Membership, Organization, Team


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
    list_display = ("name", "slug", "seat_limit", "agents_may_delete_records", "time_zone", "created_at")
    search_fields = ("name", "slug")


@admin.register(Membership)
class MembershipAdmin(SuperuserOnlyAdmin):
    list_display = ("user", "organization", "role", "is_active")
    list_filter = ("role", "is_active", "organization")


@admin.register(Invitation)
class InvitationAdmin(SuperuserOnlyAdmin):
    """Read-only: invitations are answered by the invited person, in the product."""

    list_display = ("email", "organization", "role", "status", "created_at", "responded_at")
    list_filter = ("status", "organization")
    search_fields = ("email",)

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


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


class OrganizationScopedAdmin(admin.ModelAdmin):
    """Base for tenant models in the Django admin (support staff).

    Superusers see every organization. Other staff users (``is_staff`` with model permissions) see and edit
    only the rows of the organization they are currently acting for (``request.org``, their session's
    organization, switched like anywhere else in the product); foreign keys offer only that organization's
    objects, and new rows are put in it. Set ``org_field`` when the path to the organization is not
    ``organization``.
    """

    org_field = "organization"

    @staticmethod
    def _scoped(request) -> bool:
        return not request.user.is_superuser

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if not self._scoped(request):
            return qs
        org = getattr(request, "org", None)
        return qs.filter(**{self.org_field: org}) if org is not None else qs.none()

    def has_module_permission(self, request):
        if self._scoped(request) and getattr(request, "org", None) is None:
            return False
        return super().has_module_permission(request)

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if self._scoped(request) and self.org_field == "organization":
            fields.append("organization")
        return fields

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        if self._scoped(request):
            filters = [f for f in filters if f != self.org_field]
        return filters

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        org = getattr(request, "org", None)
        if self._scoped(request) and org is not None:
            related = db_field.related_model
            if related is Organization:
                kwargs["queryset"] = Organization.objects.filter(pk=org.pk)
            elif any(f.name == "organization" for f in related._meta.concrete_fields):
                kwargs["queryset"] = related._default_manager.filter(organization=org)
            elif related._meta.label == "auth.User" or related is type(request.user):
                kwargs["queryset"] = related._default_manager.filter(
                    memberships__organization=org, memberships__is_active=True
                )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if self._scoped(request) and self.org_field == "organization":
            obj.organization = request.org
        super().save_model(request, obj, form, change)
