from django.contrib.auth import get_user_model
from rest_framework import serializers

from quicksend.api import StrictModelSerializer, StrictSerializer
from quicksend.bounded_ids import BoundedIdField
from tenancy.models import ApiToken, AuditLog, Invitation, Membership, Organization, Role, Team

User = get_user_model()


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "email", "first_name", "last_name"]


class OrganizationSerializer(StrictModelSerializer):
    seats_used = serializers.IntegerField(read_only=True)

    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "time_zone", "seat_limit", "seats_used", "agents_may_delete_records"]
        read_only_fields = ["id", "slug", "seat_limit", "seats_used", "agents_may_delete_records"]


class MembershipSerializer(StrictModelSerializer):
    user = UserSerializer(read_only=True)
    team_ids = serializers.SerializerMethodField()

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "is_active", "team_ids", "created_at"]
        read_only_fields = ["id", "user", "team_ids", "created_at"]

    def get_team_ids(self, obj) -> list[int]:
        return sorted(t.pk for t in obj.teams.all())


class MemberCreateSerializer(StrictSerializer):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.choices, default=Role.AGENT)
    first_name = serializers.CharField(required=False, allow_blank=True, default="")
    last_name = serializers.CharField(required=False, allow_blank=True, default="")
    password = serializers.CharField(
        required=False,
        write_only=True,
        style={"input_type": "password"},
        help_text="Initial password if the email has no account yet (ignored otherwise).",
    )


class InvitationSerializer(serializers.ModelSerializer):
    """What the admin sees of an invitation: the same fields whether or not the email had an account."""

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "status", "created_at", "responded_at"]
        read_only_fields = fields


class TeamSerializer(StrictModelSerializer):
    member_ids = serializers.ListField(
        child=BoundedIdField(), required=False, write_only=True, max_length=10_000
    )
    members = serializers.SerializerMethodField()

    class Meta:
        model = Team
        fields = ["id", "name", "members", "member_ids", "created_at"]
        read_only_fields = ["id", "members", "created_at"]

    def get_members(self, obj) -> list[int]:
        return sorted(m.pk for m in obj.members.all())


class ApiTokenSerializer(StrictModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = ["id", "prefix", "created_at", "last_used_at", "revoked_at"]


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    key = serializers.CharField(read_only=True, help_text="Shown once. Store it now; it cannot be retrieved.")

    class Meta(ApiTokenSerializer.Meta):
        fields = ApiTokenSerializer.Meta.fields + ["key"]


class AuditLogSerializer(serializers.ModelSerializer):
    actor = UserSerializer(
        read_only=True, allow_null=True, help_text="Who did it; null: the system (a worker, a webhook)."
    )

    class Meta:
        model = AuditLog
        fields = ["id", "created_at", "actor", "action", "object_type", "object_id", "object_repr", "changes"]


class MeSerializer(serializers.Serializer):
    user = UserSerializer()
    organization = OrganizationSerializer()
    role = serializers.CharField()
