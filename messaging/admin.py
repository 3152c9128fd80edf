from django.contrib import admin, messages

from messaging.models import InboundEvent, InboxStep, MessagingSettings, PhoneNumber, TwilioAccount
from tenancy.admin import OrganizationScopedAdmin


@admin.register(TwilioAccount)
class TwilioAccountAdmin(admin.ModelAdmin):
    list_display = ["account_sid", "friendly_name", "organization", "status", "last_validated_at"]
    list_filter = ["status"]
    search_fields = ["account_sid", "friendly_name", "organization__name"]
    # The encrypted token is never shown or edited here; admins replace it from the settings page (verified).
    exclude = ["auth_token_encrypted"]
    readonly_fields = ["auth_token_last4", "last_validated_at", "last_validation_result", "numbers_synced_at"]


@admin.register(PhoneNumber)
class PhoneNumberAdmin(admin.ModelAdmin):
    list_display = ["phone_number", "label", "friendly_name", "organization", "sms_capable", "is_active"]
    list_filter = ["is_active", "sms_capable", "number_type"]
    search_fields = ["phone_number", "label", "friendly_name", "sid"]


@admin.register(MessagingSettings)
class MessagingSettingsAdmin(admin.ModelAdmin):
    list_display = ["organization", "default_number", "agents_may_use_any_number"]


# --- Processing failures (docs/messaging.md "Processing failures") ------------------------------------------


class _StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("failed", "Failed (gave up)"), ("waiting", "Waiting or retrying"), ("done", "Done")]


class InboxStepState(_StateFilter):
    def queryset(self, request, queryset):
        if self.value() == "failed":
            return queryset.filter(done_at__isnull=True, failed_at__isnull=False)
        if self.value() == "waiting":
            return queryset.filter(done_at__isnull=True, failed_at__isnull=True)
        if self.value() == "done":
            return queryset.filter(done_at__isnull=False)
        return queryset


@admin.register(InboxStep)
class InboxStepAdmin(OrganizationScopedAdmin):
    """The inbox's follow-up of each inbound text; the failed ones are what an admin must look at."""

    list_display = [
        "message",
        "organization",
        "state",
        "attempts",
        "short_error",
        "created_at",
        "last_tried_at",
    ]
    list_filter = [InboxStepState]
    list_select_related = ["organization"]
    search_fields = ["message__sid", "error"]
    ordering = ["-id"]
    actions = ["retry_now"]
    readonly_fields = [f.name for f in InboxStep._meta.fields]

    def has_add_permission(self, request):
        return False

    @admin.display(description="error")
    def short_error(self, step: InboxStep) -> str:
        return step.error[:120]

    @admin.action(description="Retry now")
    def retry_now(self, request, queryset):
        from messaging.inbox import steps

        chosen = list(queryset.filter(done_at__isnull=True).values_list("pk", flat=True))
        done = steps.do_retry_steps(chosen)
        level = messages.SUCCESS if done == len(chosen) else messages.WARNING
        self.message_user(request, f"{done} of {len(chosen)} step(s) done; the others failed again.", level)


class InboundEventState(_StateFilter):
    def queryset(self, request, queryset):
        from messaging.twilio.ingest import MAX_ATTEMPTS

        pending = queryset.filter(processed_at__isnull=True)
        if self.value() == "failed":
            return pending.filter(attempts__gte=MAX_ATTEMPTS)
        if self.value() == "waiting":
            return pending.filter(attempts__lt=MAX_ATTEMPTS)
        if self.value() == "done":
            return queryset.filter(processed_at__isnull=False)
        return queryset


@admin.register(InboundEvent)
class InboundEventAdmin(OrganizationScopedAdmin):
    """Inbound webhooks as Twilio posted them; the failed ones could not become messages."""

    list_display = ["message_sid", "organization", "received_at", "processed_at", "attempts", "error"]
    list_filter = [InboundEventState]
    list_select_related = ["organization"]
    search_fields = ["message_sid", "error"]
    ordering = ["-id"]
    actions = ["retry_now"]
    readonly_fields = [f.name for f in InboundEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Retry now")
    def retry_now(self, request, queryset):
        from messaging.twilio import ingest

        count = queryset.filter(processed_at__isnull=True).update(attempts=0, claimed_until=None)
        woken = ingest.wake_drain("inbound")
        note = "" if woken else " The drain could not be woken now; the periodic sweep will start it."
        self.message_user(request, f"{count} event(s) will be processed again.{note}", messages.SUCCESS)
