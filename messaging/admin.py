from django.contrib import admin

from messaging.models import MessagingSettings, PhoneNumber, TwilioAccount


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
