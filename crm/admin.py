"""Django admin for support staff, scoped to the organization they act for (tenancy.admin)."""

from django.contrib import admin
from django.db import transaction

from crm import services
from crm.models import (
    Account,
    Case,
    Contact,
    ImportJob,
    ImportRejection,
    Lead,
    Opportunity,
    RecordPhone,
    RecordTypeConfig,
)
from tenancy.admin import OrganizationScopedAdmin


class RecordAdmin(OrganizationScopedAdmin):
    """Deleting follows the product's rule (crm.services.deletion_refusal) and goes through the service, so
    it is audited and announced like a deletion anywhere else."""

    list_display = ("__str__", "organization", "status", "owner", "team", "updated_at")
    list_filter = ("organization", "status")
    list_select_related = ("organization", "owner", "team")
    readonly_fields = ("created_at", "updated_at")
    show_full_result_count = False

    def has_delete_permission(self, request, obj=None):
        if not super().has_delete_permission(request, obj):
            return False
        return obj is None or services.may_delete_record(obj, request.user)

    def delete_model(self, request, obj):
        services.do_delete_record(obj, request.user)

    def delete_queryset(self, request, queryset):
        # Bulk "delete selected": each record is checked; one refusal refuses the whole action.
        with transaction.atomic():
            for record in queryset.select_related("organization"):
                services.do_delete_record(record, request.user)


@admin.register(Lead, Contact)
class PersonAdmin(RecordAdmin):
    search_fields = ("first_name", "last_name", "email", "company", "mobile_phone_e164", "external_id")
    readonly_fields = (
        *RecordAdmin.readonly_fields,
        "mobile_phone_e164",
        "business_phone_e164",
        "home_phone_e164",
    )


@admin.register(Account)
class AccountAdmin(RecordAdmin):
    search_fields = ("name", "email", "main_phone_e164", "external_id")
    readonly_fields = (*RecordAdmin.readonly_fields, "main_phone_e164")


@admin.register(Case)
class CaseAdmin(RecordAdmin):
    search_fields = ("subject", "external_id")


@admin.register(Opportunity)
class OpportunityAdmin(RecordAdmin):
    search_fields = ("name", "external_id")


@admin.register(RecordTypeConfig)
class RecordTypeConfigAdmin(OrganizationScopedAdmin):
    list_display = ("record_type", "organization", "sms_phone_field", "compliance_field", "priority")
    list_filter = ("organization",)


@admin.register(RecordPhone)
class RecordPhoneAdmin(OrganizationScopedAdmin):
    """Read-only: the index is maintained by record saves."""

    list_display = ("e164", "record_type", "record_id", "field", "organization")
    search_fields = ("e164",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ImportRejectionInline(admin.TabularInline):
    model = ImportRejection
    fields = ("line", "reason")
    readonly_fields = ("line", "reason")
    extra = 0
    max_num = 0
    can_delete = False


@admin.register(ImportJob)
class ImportJobAdmin(OrganizationScopedAdmin):
    list_display = (
        "original_name",
        "organization",
        "record_type",
        "status",
        "imported",
        "rejected",
        "created_at",
    )
    list_filter = ("organization", "status")
    inlines = [ImportRejectionInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
