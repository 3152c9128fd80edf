from django.contrib import admin

from templates_app.models import MessageTemplate


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "record_type", "updated_at"]
    list_filter = ["record_type"]
    search_fields = ["name", "body"]
