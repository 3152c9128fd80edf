"""API serializers for CRM records, record-type settings and import jobs. Related fields are scoped to the
caller's organization, so a payload can never point at another organization's object (it reads as
"not found")."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from crm.models import (
    Account,
    Contact,
    CrmRecord,
    ImportJob,
    RecordType,
    RecordTypeConfig,
    model_for,
)
from crm.phones import format_for_display
from quicksend.api import StrictModelSerializer, StrictSerializer
from quicksend.bounded_ids import BoundedIdField, OrgScopedPrimaryKeyRelatedField
from tenancy.models import Team

User = get_user_model()


def org_users(org):
    qs = User.objects.all()
    if org is None:
        return qs
    return qs.filter(memberships__organization=org, memberships__is_active=True)


def org_teams(org):
    return Team.objects.filter(organization=org) if org is not None else Team.objects.all()


def _scoped(model):
    return lambda org: model.objects.filter(organization=org) if org is not None else model.objects.all()


class CustomFieldsField(serializers.JSONField):
    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if not isinstance(data, dict):
            raise serializers.ValidationError("custom_fields must be an object of name → value.")
        for key, value in data.items():
            if not isinstance(value, (str, int, float, bool)) and value is not None:
                raise serializers.ValidationError(f"custom_fields.{key} must be a string, number or boolean.")
        return data


class RecordSerializerBase(StrictModelSerializer):
    record_type = serializers.SerializerMethodField()
    owner = OrgScopedPrimaryKeyRelatedField(org_users)
    team = OrgScopedPrimaryKeyRelatedField(org_teams)
    custom_fields = CustomFieldsField(required=False)

    def get_record_type(self, obj) -> str:
        return obj.record_type

    def validate_status(self, value: str) -> str:
        model = self.Meta.model
        allowed = [c for c, _ in model.STATUS_CHOICES]
        if value and value not in allowed:
            raise serializers.ValidationError(
                f"'{value}' is not a status of {model.__name__}: {', '.join(allowed)}."
            )
        return value


EXAMPLE_PAYLOADS = {
    RecordType.LEAD: {
        "first_name": "Maria",
        "last_name": "Lopez",
        "email": "maria@example.com",
        "company": "Lopez Homes",
        "mobile_phone": "(415) 555-0134",
        "status": "new",
        "custom_fields": {"source": "open house"},
    },
    RecordType.CONTACT: {
        "first_name": "Justin",
        "last_name": "Reed",
        "mobile_phone": "+44 7911 123456",
        "allow_sms": True,
        "external_id": "hubspot-1842",
    },
    RecordType.ACCOUNT: {"name": "Reed Holdings", "main_phone": "212-555-0199"},
    RecordType.CASE: {"subject": "Lockbox code not working", "contact": 12, "status": "open"},
    RecordType.OPPORTUNITY: {"name": "12 Elm St listing", "amount": "450000.00", "account": 3},
}


def build_record_serializer(record_type: str) -> type[RecordSerializerBase]:
    """The serializer of one record type: raw phone fields are writable, their ``*_e164`` twins read-only."""
    model = model_for(record_type)
    phone_extra = []
    for name in model.phone_fields:
        phone_extra += [f"{name}_e164"]
    exclude = {"organization"}
    fields = ["id", "record_type"] + [
        f.name for f in model._meta.concrete_fields if f.name not in exclude and f.name != "id"
    ]
    attrs: dict = {}
    for rel in ("account", "contact"):
        if any(f.name == rel for f in model._meta.concrete_fields):
            attrs[rel] = OrgScopedPrimaryKeyRelatedField(_scoped(Account if rel == "account" else Contact))
    if model.STATUS_CHOICES:
        attrs["status"] = serializers.CharField(
            required=False,
            allow_blank=True,
            help_text="One of: " + ", ".join(c for c, _ in model.STATUS_CHOICES),
        )
    meta = type(
        "Meta",
        (),
        {
            "model": model,
            "fields": fields,
            "read_only_fields": ["id", "created_at", "updated_at", *phone_extra],
        },
    )
    attrs["Meta"] = meta
    return type(f"{model.__name__}Serializer", (RecordSerializerBase,), attrs)


RECORD_SERIALIZERS = {rt: build_record_serializer(rt) for rt in RecordType.values}


class RecordRefSerializer(serializers.Serializer):
    """A record found by phone across types (inbound matching)."""

    record_type = serializers.CharField()
    id = serializers.IntegerField()
    name = serializers.CharField()


def record_ref(record: CrmRecord) -> dict:
    return {"record_type": record.record_type, "id": record.pk, "name": str(record)}


class ReassignSerializer(StrictSerializer):
    owner = OrgScopedPrimaryKeyRelatedField(org_users, required=True, allow_null=False)
    team = OrgScopedPrimaryKeyRelatedField(org_teams, help_text="Omit to keep the team; null clears it.")


class BulkReassignSerializer(ReassignSerializer):
    ids = serializers.ListField(child=BoundedIdField(), min_length=1, max_length=1000)


class ReassignResultSerializer(serializers.Serializer):
    reassigned = serializers.IntegerField(help_text="How many records changed owner or team.")


class RecordTypeConfigSerializer(StrictModelSerializer):
    phone_field_choices = serializers.SerializerMethodField()
    compliance_field_choices = serializers.SerializerMethodField()
    # A type whose settings were never saved is its default row: no id, no update time yet.
    id = serializers.IntegerField(read_only=True, allow_null=True)
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = RecordTypeConfig
        fields = [
            "id",
            "record_type",
            "sms_phone_field",
            "compliance_field",
            "default_country",
            "priority",
            "allow_create_from_conversation",
            "phone_field_choices",
            "compliance_field_choices",
            "updated_at",
        ]
        read_only_fields = ["id", "record_type", "updated_at"]

    def get_phone_field_choices(self, obj) -> list[str]:
        return list(model_for(obj.record_type).phone_fields)

    def get_compliance_field_choices(self, obj) -> list[str]:
        return list(model_for(obj.record_type).compliance_fields)


class ImportRejectionSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    reason = serializers.CharField()


class ImportJobSerializer(serializers.ModelSerializer):
    percent = serializers.IntegerField(read_only=True)
    rejections = serializers.SerializerMethodField()
    report_url = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "record_type",
            "original_name",
            "size",
            "encoding",
            "delimiter",
            "headers",
            "mapping",
            "duplicate_policy",
            "match_key",
            "status",
            "error",
            "percent",
            "processed_rows",
            "imported",
            "updated",
            "skipped",
            "rejected",
            "rejections",
            "report_url",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_rejections(self, obj) -> list[dict]:
        """The first 100 rejected rows (the full list is in the CSV report)."""
        return [{"line": r.line, "reason": r.reason} for r in obj.rejections.all()[:100]]

    def get_report_url(self, obj) -> str:
        return f"/api/v1/imports/{obj.pk}/report"


class ImportCreateSerializer(StrictSerializer):
    file = serializers.FileField(
        help_text="CSV, UTF-8 (with or without BOM) or Latin-1; , ; or tab separated."
    )
    record_type = serializers.ChoiceField(choices=[RecordType.LEAD, RecordType.CONTACT])
    mapping = serializers.JSONField(
        required=False,
        help_text='CSV column → field name, "custom:<key>" or "" to ignore. Omit to use the guessed mapping.',
    )
    duplicate_policy = serializers.ChoiceField(
        choices=ImportJob.Policy.choices, default=ImportJob.Policy.SKIP
    )
    match_key = serializers.ChoiceField(choices=ImportJob.MatchKey.choices, default=ImportJob.MatchKey.PHONE)
    start = serializers.BooleanField(
        default=True, help_text="Start the import now (false: upload and preview only; start it later)."
    )


class ImportStartSerializer(StrictSerializer):
    mapping = serializers.JSONField(required=False)
    duplicate_policy = serializers.ChoiceField(choices=ImportJob.Policy.choices, required=False)
    match_key = serializers.ChoiceField(choices=ImportJob.MatchKey.choices, required=False)


def display_phone(e164: str) -> str:
    return format_for_display(e164) if e164 else ""
