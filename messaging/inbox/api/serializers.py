"""Serializers, OpenAPI shapes, keyset cursors and query-parameter parsers shared by the inbox API modules
(messaging/api_inbox_*.py, messaging/inbox/api/notifications.py)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.utils import extend_schema_serializer, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from messaging.inbox.message_shape import consent_revocation, media_by_message, sender_name
from messaging.models import (
    Conversation,
    Message,
    MessageSession,
)
from quicksend.api import StrictSerializer
from quicksend.bounded_ids import BoundedIdField, OrgScopedPrimaryKeyRelatedField, parse_id
from tenancy.models import Team

User = get_user_model()


class ConversationSerializer(serializers.Serializer):
    """A conversation as lists show it (the documented shape is ``_conversation_schema``). The views build
    the items with ``conversation_items`` from ``values()`` rows; this class names the shape for the
    schema."""


# The hot lists (conversations, a thread) build their items from ``values()`` rows: no model instances and no
# serializer field per value, which at 50 rows was most of a request's CPU time (docs/benchmarks.md, "Inbox").
# Tests hold the shapes equal to ``events.conversation_payload`` and ``MessageSerializer``.
CONVERSATION_ROW_FIELDS = (
    "id",
    "organization_id",
    "phone_number_id",
    "phone_number__phone_number",
    "phone_number__label",
    "customer_number",
    "status",
    "is_current",
    "owner_id",
    "owner__first_name",
    "owner__last_name",
    f"owner__{User.USERNAME_FIELD}",
    "team_id",
    "team__name",
    "record_type",
    "record_id",
    "regarding_type",
    "regarding_id",
    "last_message_at",
    "last_message_preview",
    "last_message_direction",
    "last_message_status",
    "last_message_source",
    "last_message_source_label",
    "my_unread",
    "my_dismissed",
)
_OWNER_USERNAME = f"owner__{User.USERNAME_FIELD}"
_SENDER_USERNAME = f"sender__{User.USERNAME_FIELD}"


def conversation_items(rows: list[dict], record_names: dict) -> list[dict]:
    """List items from rows of ``CONVERSATION_ROW_FIELDS``: ``events.conversation_payload`` plus the caller's
    ``unread``/``dismissed`` and the records' names (``record_names``: (type, id) → name)."""
    items = []
    for row in rows:
        owner = None
        if row["owner_id"] is not None:
            full_name = f"{row['owner__first_name']} {row['owner__last_name']}".strip()  # get_full_name()
            owner = {"id": row["owner_id"], "name": full_name or row[_OWNER_USERNAME]}
        at = row["last_message_at"]
        items.append(
            {
                "id": row["id"],
                "phone_number": {
                    "id": row["phone_number_id"],
                    "phone_number": row["phone_number__phone_number"],
                    "label": row["phone_number__label"],
                },
                "customer_number": row["customer_number"],
                "status": row["status"],
                "is_current": row["is_current"],
                "owner": owner,
                "team": {"id": row["team_id"], "name": row["team__name"]} if row["team_id"] else None,
                "record_type": row["record_type"],
                "record_id": row["record_id"],
                "regarding_type": row["regarding_type"],
                "regarding_id": row["regarding_id"],
                "last_message": {
                    "at": at.isoformat() if at is not None else None,
                    "preview": row["last_message_preview"],
                    "direction": row["last_message_direction"],
                    "status": row["last_message_status"],
                    "source": row["last_message_source"],
                    "source_label": row["last_message_source_label"],
                },
                "unread": row["my_unread"] or 0,
                "dismissed": bool(row["my_dismissed"]),
                "record_name": record_names.get((row["record_type"], row["record_id"]), ""),
                "regarding_name": record_names.get((row["regarding_type"], row["regarding_id"]), ""),
            }
        )
    return items


# One class for the schema (a second class of the same name would be a second, clashing component).
_ConversationShape = type(
    inline_serializer(
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
                    "source": serializers.CharField(
                        help_text="Who sent it: agent, automation, campaign, api, customer, …"
                    ),
                    "source_label": serializers.CharField(
                        help_text="The automation's or campaign's name ('' for the others)."
                    ),
                },
            ),
            "unread": serializers.IntegerField(),
            "dismissed": serializers.BooleanField(),
        },
    )
)


def _conversation_schema(**kwargs):
    return _ConversationShape(**kwargs)


MESSAGE_ROW_FIELDS = (
    "id",
    "conversation_id",
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
    "sender_id",
    "source_label",
    "created_at",
)
# A thread page reads these too: the sending agent's name rides along in the same query.
THREAD_ROW_FIELDS = (
    *MESSAGE_ROW_FIELDS,
    "sender__first_name",
    "sender__last_name",
    f"sender__{User.USERNAME_FIELD}",
)


# A thread item, for the schema; ``message_items`` builds the same from rows (tests hold them equal, and hold
# ``events.message_payload`` equal to both).
@extend_schema_serializer(component_name="ThreadMessage")
class MessageSerializer(serializers.ModelSerializer):
    sender_name = serializers.SerializerMethodField(
        help_text="The agent who sent it ('' when no person did)."
    )
    media = serializers.SerializerMethodField(
        help_text="Attachments: id, content_type, filename, size, url (null when not stored), error."
    )
    consent_revocation = serializers.SerializerMethodField(
        help_text="An inbound text asking, in words, to stop being texted (offer to record the opt-out)."
    )

    class Meta:
        model = Message
        fields = [
            *(name.removesuffix("_id") for name in MESSAGE_ROW_FIELDS),  # conversation_id → conversation
            "sender_name",
            "media",
            "consent_revocation",
        ]
        read_only_fields = fields

    def get_sender_name(self, message) -> str:
        user = message.sender
        return sender_name(user.first_name, user.last_name, user.get_username()) if user else ""

    def get_media(self, message) -> list[dict]:
        return media_by_message([message.pk]).get(message.pk, []) if message.num_media else []

    def get_consent_revocation(self, message) -> bool:
        return consent_revocation(message.direction, message.body)


_DATETIME = serializers.DateTimeField(read_only=True)


def message_items(rows: list[dict]) -> list[dict]:
    """``MessageSerializer``'s items from rows of ``THREAD_ROW_FIELDS`` (one more query when some have
    attachments)."""
    as_text = _DATETIME.to_representation
    media = media_by_message(row["id"] for row in rows if row["num_media"])
    return [
        {
            "id": row["id"],
            "conversation": row["conversation_id"],
            "direction": row["direction"],
            "source": row["source"],
            "status": row["status"],
            "from_number": row["from_number"],
            "to_number": row["to_number"],
            "body": row["body"],
            "num_media": row["num_media"],
            "num_segments": row["num_segments"],
            "error_code": row["error_code"],
            "error_message": row["error_message"],
            "sender": row["sender_id"],
            "source_label": row["source_label"],
            "created_at": as_text(row["created_at"]),
            "sender_name": sender_name(
                row["sender__first_name"], row["sender__last_name"], row[_SENDER_USERNAME]
            )
            if row["sender_id"]
            else "",
            "media": media.get(row["id"], []),
            "consent_revocation": consent_revocation(row["direction"], row["body"]),
        }
        for row in rows
    ]


class SessionSerializer(serializers.ModelSerializer):
    class Meta:
        model = MessageSession
        fields = ["id", "started_at", "ends_at", "owner", "message_count"]
        read_only_fields = fields


class AssignSerializer(StrictSerializer):
    confirm = serializers.BooleanField(
        default=False, help_text="Required when someone else owns the conversation (the answer to a 409)."
    )


def _active_members(org):
    if org is None:
        return User.objects.all()
    return User.objects.filter(memberships__organization=org, memberships__is_active=True)


def _teams(org):
    if org is None:
        return Team.objects.all()
    return Team.objects.filter(organization=org)


@extend_schema_serializer(component_name="ConversationReassign")
class ReassignSerializer(StrictSerializer):
    user = OrgScopedPrimaryKeyRelatedField(_active_members, help_text="An active member's user id.")
    team = OrgScopedPrimaryKeyRelatedField(_teams, help_text="A team id.")

    def validate(self, attrs):
        if not attrs.get("user") and not attrs.get("team"):
            raise ValidationError("Choose a user or a team.")
        return attrs


@extend_schema_serializer(component_name="ConversationBulkReassign")
class BulkReassignSerializer(ReassignSerializer):
    ids = serializers.ListField(child=BoundedIdField(), min_length=1, max_length=500)


class CreateRecordSerializer(StrictSerializer):
    record_type = serializers.CharField()
    fields = serializers.DictField(
        required=False, default=dict, help_text="The record's fields (e.g. last_name)."
    )


class RecordOwnerChangeSerializer(StrictSerializer):
    record_type = serializers.CharField()
    record_id = BoundedIdField()
    new_owner = OrgScopedPrimaryKeyRelatedField(
        _active_members, required=True, help_text="The record's new owner (a user id), or null."
    )
    carry_over = serializers.BooleanField(
        help_text="True: the record's current conversations move to the new owner with their history. "
        "False: they are archived and the next text starts a new one. Required: the caller must choose."
    )


def _valid(serializer_class, request):
    serializer = serializer_class(data=request.data or {}, context={"request": request})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _id(value, name: str) -> int:
    """An id from a query parameter, within the range the database stores; a 400 naming ``name`` otherwise."""
    try:
        return parse_id(value, name)
    except DjangoValidationError as exc:
        raise ValidationError(exc.message_dict)


def _path_id(value) -> int:
    """An id from the URL path; one that cannot name a row (not a number, past the stored range) is 404."""
    try:
        return parse_id(value, "id")
    except DjangoValidationError:
        raise Http404


def _bool(value) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")
