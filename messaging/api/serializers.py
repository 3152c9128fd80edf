from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from crm.models import RecordType
from messaging import labels
from messaging.models import MessagingSettings, PhoneNumber, TwilioAccount
from messaging.segments import MAX_BODY_CHARACTERS, body_too_long
from quicksend.api import StrictModelSerializer, StrictSerializer
from quicksend.bounded_ids import ID_SCHEMA, BoundedIdField, OrgScopedPrimaryKeyRelatedField, parse_id


def _org_numbers(org):
    if org is None:
        return PhoneNumber.objects.all()
    return PhoneNumber.objects.filter(organization=org)


class OrgNumberField(OrgScopedPrimaryKeyRelatedField):
    """A number id, looked up only inside the caller's organization (a foreign id is "does not exist")."""

    def __init__(self, **kwargs):
        super().__init__(_org_numbers, **kwargs)


class TwilioAccountSerializer(StrictModelSerializer):
    auth_token = serializers.CharField(
        write_only=True,
        required=True,
        style={"input_type": "password"},
        help_text="Verified with Twilio before it is stored (encrypted). Never returned.",
    )
    auth_token_masked = serializers.CharField(source="masked_auth_token", read_only=True)

    class Meta:
        model = TwilioAccount
        fields = [
            "id",
            "account_sid",
            "auth_token",
            "auth_token_masked",
            "friendly_name",
            "status",
            "twilio_status",
            "account_type",
            "last_validated_at",
            "last_validation_result",
            "numbers_synced_at",
            "created_at",
        ]
        read_only_fields = [
            "id",
            "status",
            "twilio_status",
            "account_type",
            "last_validated_at",
            "last_validation_result",
            "numbers_synced_at",
            "created_at",
        ]
        extra_kwargs = {"account_sid": {"validators": []}, "friendly_name": {"required": False}}


class TwilioAccountUpdateSerializer(StrictSerializer):
    friendly_name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    auth_token = serializers.CharField(
        required=False, write_only=True, help_text="A new token, verified with Twilio before it is stored."
    )


class TwilioAccountConnectedSerializer(TwilioAccountSerializer):
    detail = serializers.CharField(
        read_only=True, help_text="“Twilio credentials verified and saved successfully.”"
    )
    numbers_sync = serializers.CharField(
        read_only=True, help_text="What the number sync found, or why it failed."
    )

    class Meta(TwilioAccountSerializer.Meta):
        fields = [*TwilioAccountSerializer.Meta.fields, "detail", "numbers_sync"]


class TwilioFailureSerializer(serializers.Serializer):
    """A Twilio failure (all four fields), or input refused before any request: ``{"detail": [reasons]}``
    or ``{"<field>": [reasons]}``."""

    detail = serializers.JSONField(
        required=False, help_text="What went wrong, in plain words. Nothing was saved."
    )
    code = serializers.IntegerField(
        required=False, allow_null=True, help_text="Twilio's error code, when Twilio gave one."
    )
    kind = serializers.CharField(
        required=False, help_text="auth, suspended, closed, unreachable, timeout, rate_limited, …"
    )
    retryable = serializers.BooleanField(required=False)


class PhoneNumberSerializer(StrictModelSerializer):
    display_name = serializers.SerializerMethodField()
    account = serializers.PrimaryKeyRelatedField(read_only=True)
    member_ids = serializers.ListField(child=BoundedIdField(), required=False, max_length=1000)
    team_ids = serializers.ListField(child=BoundedIdField(), required=False, max_length=1000)
    usable_by_me = serializers.SerializerMethodField()
    is_default = serializers.SerializerMethodField()
    # "" when Twilio has none for the number: text, not a URL, in the schema.
    sms_url = serializers.CharField(
        read_only=True, help_text="The SMS webhook URL Twilio has ('' when none)."
    )

    class Meta:
        model = PhoneNumber
        fields = [
            "id",
            "sid",
            "phone_number",
            "display_name",
            "label",
            "friendly_name",
            "number_type",
            "sms_capable",
            "mms_capable",
            "voice_capable",
            "is_active",
            "account",
            "sms_url",
            "sms_method",
            "member_ids",
            "team_ids",
            "usable_by_me",
            "is_default",
            "last_synced_at",
        ]
        read_only_fields = [f for f in fields if f not in ("label", "member_ids", "team_ids")]

    def get_display_name(self, obj) -> str:
        return labels.number_label(obj)

    def get_usable_by_me(self, obj) -> bool:
        return obj.pk in self.context.get("usable_ids", set())

    def get_is_default(self, obj) -> bool:
        return obj.pk == self.context.get("default_id")

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["member_ids"] = sorted(m.pk for m in instance.assigned_members.all())
        data["team_ids"] = sorted(t.pk for t in instance.assigned_teams.all())
        return data


class MessagingSettingsSerializer(StrictModelSerializer):
    default_number = OrgNumberField(allow_null=True, required=False)
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True, help_text="null: never saved.")

    class Meta:
        model = MessagingSettings
        fields = ["default_number", "agents_may_use_any_number", "updated_at"]
        read_only_fields = ["updated_at"]


class MyDefaultNumberSerializer(StrictSerializer):
    default_number = OrgNumberField(required=True, help_text="Your own default; null → the organization's.")
    effective_default = serializers.IntegerField(read_only=True, allow_null=True)


@extend_schema_field(
    {
        "oneOf": [
            {
                "type": "object",
                "properties": {"type": {"type": "string", "enum": list(RecordType.values)}, "id": ID_SCHEMA},
                "required": ["type", "id"],
                "additionalProperties": False,
            },
            {"type": "string", "pattern": "^[a-z]+:[0-9]+$", "description": 'Form style: "lead:12".'},
        ]
    }
)
class RecordRefField(serializers.Field):
    """``{"type": "lead", "id": 12}`` (JSON) or ``"lead:12"`` (form)."""

    # DRF formats these with str.format: the braces of the example are doubled.
    default_error_messages = {"invalid": 'Give the record as {{"type": "lead", "id": 12}} (or "lead:12").'}

    def to_internal_value(self, data):
        if isinstance(data, str) and ":" in data:
            kind, _, ident = data.partition(":")
            data = {"type": kind, "id": ident}
        if not isinstance(data, dict) or set(data) != {"type", "id"}:
            self.fail("invalid")
        if data["type"] not in RecordType.values:
            raise ValidationError(f"'{data['type']}' is not a record type ({', '.join(RecordType.values)}).")
        if isinstance(data["id"], bool) or not isinstance(data["id"], int | str):
            self.fail("invalid")
        try:
            return {"type": data["type"], "id": parse_id(data["id"], "id")}
        except DjangoValidationError:
            self.fail("invalid")

    def to_representation(self, value):
        return value


def message_body_field(**kwargs) -> serializers.CharField:
    """A message body as every API takes it: optional (media or a template may stand in), kept exactly as
    typed, at most ``MAX_BODY_CHARACTERS`` (Twilio refuses longer, 21617)."""
    return serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=MAX_BODY_CHARACTERS,
        error_messages={"max_length": body_too_long()},
        **kwargs,
    )
