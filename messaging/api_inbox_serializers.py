"""Serializers, OpenAPI shapes, keyset cursors and query-parameter parsers shared by the inbox API modules
(messaging/api_inbox_*.py, messaging/api_notifications.py)."""

from __future__ import annotations

import base64
from datetime import datetime

from django.contrib.auth import get_user_model
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from messaging import events
from messaging.models import (
    Conversation,
    Message,
    MessageSession,
)
from quicksend.api import StrictSerializer
from tenancy.models import Team

User = get_user_model()


class ConversationSerializer(serializers.Serializer):
    """A conversation as lists show it; ``unread`` is the caller's own count."""

    def to_representation(self, instance):
        data = events.conversation_payload(instance)
        data["unread"] = getattr(instance, "my_unread", 0) or 0
        data["dismissed"] = bool(getattr(instance, "my_dismissed", False))
        names = self.context.get("record_names", {})
        data["record_name"] = names.get((instance.record_type, instance.record_id), "")
        data["regarding_name"] = names.get((instance.regarding_type, instance.regarding_id), "")
        return data


def _conversation_schema(**kwargs):
    return inline_serializer(
        "Conversation",
        {
            "id": serializers.IntegerField(),
            "phone_number": inline_serializer(
                "ConversationNumber",
                {
                    "id": serializers.IntegerField(),
                    "phone_number": serializers.CharField(),
                    "label": serializers.CharField(),
                },
            ),
            "customer_number": serializers.CharField(),
            "status": serializers.ChoiceField(Conversation.Status.choices),
            "is_current": serializers.BooleanField(),
            "owner": inline_serializer(
                "ConversationOwner",
                {"id": serializers.IntegerField(), "name": serializers.CharField()},
                allow_null=True,
            ),
            "team": inline_serializer(
                "ConversationTeam",
                {"id": serializers.IntegerField(), "name": serializers.CharField()},
                allow_null=True,
            ),
            "record_type": serializers.CharField(),
            "record_id": serializers.IntegerField(allow_null=True),
            "record_name": serializers.CharField(),
            "regarding_type": serializers.CharField(),
            "regarding_id": serializers.IntegerField(allow_null=True),
            "regarding_name": serializers.CharField(),
            "last_message": inline_serializer(
                "ConversationLastMessage",
                {
                    "at": serializers.DateTimeField(allow_null=True),
                    "preview": serializers.CharField(),
                    "direction": serializers.CharField(),
                    "status": serializers.CharField(),
                },
            ),
            "unread": serializers.IntegerField(),
            "dismissed": serializers.BooleanField(),
        },
        **kwargs,
    )


class MessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = [
            "id",
            "conversation",
            "direction",
            "source",
            "status",
            "from_number",
            "to_number",
            "body",
            "num_media",
            "num_segments",
            "error_code",
            "error_message",
            "sender",
            "created_at",
        ]
        read_only_fields = fields


class SessionSerializer(serializers.ModelSerializer):
    class Meta:
        model = MessageSession
        fields = ["id", "started_at", "ends_at", "owner", "message_count"]
        read_only_fields = fields


class AssignSerializer(StrictSerializer):
    confirm = serializers.BooleanField(
        default=False, help_text="Required when someone else owns the conversation (the answer to a 409)."
    )


class _OrgScopedUserField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        org = self.context["request"].org
        return User.objects.filter(memberships__organization=org, memberships__is_active=True)


class _OrgScopedTeamField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        return Team.objects.filter(organization=self.context["request"].org)


class ReassignSerializer(StrictSerializer):
    user = _OrgScopedUserField(required=False, allow_null=True)
    team = _OrgScopedTeamField(required=False, allow_null=True)

    def validate(self, attrs):
        if not attrs.get("user") and not attrs.get("team"):
            raise ValidationError("Choose a user or a team.")
        return attrs


class BulkReassignSerializer(ReassignSerializer):
    ids = serializers.ListField(child=serializers.IntegerField(), min_length=1, max_length=500)


class CreateRecordSerializer(StrictSerializer):
    record_type = serializers.CharField()
    fields = serializers.DictField(
        required=False, default=dict, help_text="The record's fields (e.g. last_name)."
    )


class RecordOwnerChangeSerializer(StrictSerializer):
    record_type = serializers.CharField()
    record_id = serializers.IntegerField()
    new_owner = _OrgScopedUserField(allow_null=True)
    carry_over = serializers.BooleanField(
        help_text="True: the record's current conversations move to the new owner with their history. "
        "False: they are archived and the next text starts a new one. Required: the caller must choose."
    )


# --- keyset cursors ----------------------------------------------------------------------------------------


def _encode(at: datetime, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{pk}".encode()).decode()


def _decode(cursor: str) -> tuple[datetime, int]:
    try:
        at_text, pk_text = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        at = parse_datetime(at_text)
        if at is None:
            raise ValueError
        return at, int(pk_text)
    except (ValueError, UnicodeDecodeError, TypeError):
        raise ValidationError({"cursor": "Invalid cursor."})


def _page_size(request, default: int = 50, maximum: int = 200) -> int:
    try:
        return max(1, min(int(request.query_params.get("page_size", default)), maximum))
    except ValueError:
        raise ValidationError({"page_size": "Must be a number."})


def _valid(serializer_class, request):
    serializer = serializer_class(data=request.data or {}, context={"request": request})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _int(value, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValidationError({name: "Must be a number."})


def _bool(value) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")
