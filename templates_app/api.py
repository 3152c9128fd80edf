"""``/api/v1/templates``: admins create, change and delete; every member reads."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets

from quicksend.api import StrictModelSerializer
from templates_app import services
from templates_app.models import MessageTemplate
from templates_app.rendering import FIELD_RE, fields_for
from tenancy.permissions import IsOrgAdminOrReadOnly


class MessageTemplateSerializer(StrictModelSerializer):
    merge_fields = serializers.SerializerMethodField(
        help_text="Merge fields this template's record type offers."
    )

    class Meta:
        model = MessageTemplate
        fields = [
            "id",
            "name",
            "body",
            "record_type",
            "merge_fields",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "merge_fields", "created_by", "created_at", "updated_at"]
        extra_kwargs = {"body": {"trim_whitespace": False, "max_length": 1600}}

    def get_merge_fields(self, obj) -> list[str]:
        return sorted(fields_for(obj.record_type))

    def validate(self, attrs):
        body = attrs.get("body", getattr(self.instance, "body", ""))
        record_type = attrs.get("record_type", getattr(self.instance, "record_type", ""))
        unknown = sorted({m.group(1) for m in FIELD_RE.finditer(body)} - set(fields_for(record_type)))
        if unknown:
            known = ", ".join(sorted(fields_for(record_type)))
            raise serializers.ValidationError(
                {"body": [f"Unknown merge field(s): {', '.join(unknown)}. Available: {known}."]}
            )
        return attrs


_EXAMPLE = {
    "name": "Appointment reminder",
    "body": "Hi {{first_name}}, see you tomorrow!",
    "record_type": "lead",
}


@extend_schema_view(
    list=extend_schema(summary="List message templates"),
    retrieve=extend_schema(summary="Get a message template"),
    create=extend_schema(
        summary="Create a message template (admin)",
        examples=[OpenApiExample("Reminder", value=_EXAMPLE, request_only=True)],
    ),
    update=extend_schema(summary="Replace a message template (admin)"),
    partial_update=extend_schema(summary="Change a message template (admin)"),
    destroy=extend_schema(summary="Delete a message template (admin)"),
)
class MessageTemplateViewSet(viewsets.ModelViewSet):
    queryset = MessageTemplate.objects.none()
    serializer_class = MessageTemplateSerializer
    permission_classes = [IsOrgAdminOrReadOnly]

    def get_queryset(self):
        return MessageTemplate.objects.filter(organization=self.request.org).order_by("-id")

    def perform_create(self, serializer):
        serializer.instance = services.do_create_template(
            self.request.org, self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.do_update_template(
            serializer.instance, self.request.user, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.do_delete_template(instance, self.request.user)
